/**
 * Typed access to a JSON config object (HF `config.json`), with HF-style defaults for absent keys
 * and errors naming the file, the key path and the bad value for present but invalid ones.
 */

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export class ConfigReader {
  constructor(
    readonly raw: Record<string, unknown>,
    /** Where the object sits, for messages: `config.json`, `config.json: vision_config`. */
    readonly where: string,
  ) {}

  fail(key: string, message: string): never {
    throw new Error(`${this.where}: '${key}' ${message}`);
  }

  has(key: string): boolean {
    return this.raw[key] !== undefined && this.raw[key] !== null;
  }

  private value(key: string, fallback: unknown): unknown {
    const v = this.raw[key];
    if (v !== undefined && v !== null) return v;
    if (fallback === undefined) this.fail(key, 'is missing');
    return fallback;
  }

  /** An integer >= min (default 1). `fallback` undefined makes the key required. */
  int(key: string, fallback?: number, min = 1): number {
    const v = this.value(key, fallback);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
      this.fail(key, `must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    }
    return v;
  }

  /** A finite number > 0 (eps values). */
  positive(key: string, fallback?: number): number {
    const v = this.value(key, fallback);
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) this.fail(key, `must be a positive number, got ${JSON.stringify(v)}`);
    return v;
  }

  num(key: string, fallback?: number): number {
    const v = this.value(key, fallback);
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(key, `must be a number, got ${JSON.stringify(v)}`);
    return v;
  }

  bool(key: string, fallback?: boolean): boolean {
    const v = this.value(key, fallback);
    if (typeof v !== 'boolean') this.fail(key, `must be true or false, got ${JSON.stringify(v)}`);
    return v;
  }

  /** A string from `allowed` (when given). */
  str<T extends string>(key: string, fallback?: T, allowed?: readonly T[]): T {
    const v = this.value(key, fallback);
    if (typeof v !== 'string') this.fail(key, `must be a string, got ${JSON.stringify(v)}`);
    if (allowed && !allowed.includes(v as T)) {
      this.fail(key, `is '${v}'; supported: ${allowed.map((a) => `'${a}'`).join(', ')}`);
    }
    return v as T;
  }

  /** A non-empty list of integers >= min. */
  intList(key: string, fallback?: number[], min = 0): number[] {
    const v = this.value(key, fallback);
    if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= min)) {
      this.fail(key, `must be a non-empty list of integers >= ${min}, got ${JSON.stringify(v)}`);
    }
    return [...v] as number[];
  }

  /** A nested object as its own reader; `required` makes an absent key an error. */
  child(key: string, required: boolean): ConfigReader {
    const v = this.raw[key];
    if (v === undefined || v === null) {
      if (required) this.fail(key, 'is missing (an object of model settings)');
      return new ConfigReader({}, `${this.where}: ${key}`);
    }
    if (!isPlainObject(v)) this.fail(key, `must be an object, got ${JSON.stringify(v)}`);
    return new ConfigReader(v, `${this.where}: ${key}`);
  }
}
