/**
 * Scoped lifetimes, so that users never dispose tensors by hand.
 *
 * Every tensor created while a scope is open is tracked by the innermost scope. When the scope's
 * function returns, every tracked tensor that is not part of the returned value (a Tensor, or
 * arrays/objects holding tensors) and was not `keep()`-ed is disposed; the returned tensors move to
 * the enclosing scope. Tensors created outside any scope are not tracked: parameters and optimizer
 * state are meant to live there, or be `keep()`-ed.
 */

/** What scope needs of a tensor (tensor.ts imports this module, not the other way round). */
export interface Disposable {
  dispose(): void;
  readonly disposed: boolean;
}

const stack: Set<Disposable>[] = [];

/** Called by the Tensor constructor. */
export function track(t: Disposable): void {
  stack[stack.length - 1]?.add(t);
}

/** Removes a tensor from every open scope: it lives until disposed explicitly. Returns it. */
export function keep<T extends Disposable>(t: T): T {
  for (const s of stack) s.delete(t);
  return t;
}

function collect(value: unknown, out: Set<Disposable>, depth = 0): void {
  if (value === null || typeof value !== 'object' || depth > 4) return;
  if ('dispose' in value && 'disposed' in value) {
    out.add(value as Disposable);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) collect(v, out, depth + 1);
  } else if (Object.getPrototypeOf(value) === Object.prototype || value instanceof Map) {
    const values = value instanceof Map ? value.values() : Object.values(value);
    for (const v of values) collect(v, out, depth + 1);
  }
}

function close(own: Set<Disposable>, result: unknown): void {
  stack.pop();
  const returned = new Set<Disposable>();
  collect(result, returned);
  const parent = stack[stack.length - 1];
  for (const t of own) {
    if (returned.has(t)) parent?.add(t);
    else t.dispose();
  }
}

/** Runs fn in a new scope; tensors it creates and does not return are disposed at the end. */
export function scope<T>(fn: () => T): T {
  const own = new Set<Disposable>();
  stack.push(own);
  let result: T;
  try {
    result = fn();
  } catch (err) {
    close(own, undefined);
    throw err;
  }
  if (result instanceof Promise) {
    throw new Error('scope(fn): fn returned a Promise; use scopeAsync for async work');
  }
  close(own, result);
  return result;
}

/**
 * Async variant. NOTE: tensors created by other async work that interleaves with fn land in this
 * scope too; do not run two scopeAsync bodies concurrently.
 */
export async function scopeAsync<T>(fn: () => Promise<T>): Promise<T> {
  const own = new Set<Disposable>();
  stack.push(own);
  let result: T;
  try {
    result = await fn();
  } catch (err) {
    close(own, undefined);
    throw err;
  }
  close(own, result);
  return result;
}

let exclusiveQueue: Promise<unknown> = Promise.resolve();

/**
 * scopeAsync whose bodies never interleave with each other: each waits for the previous one to
 * settle. For entry points that users may call concurrently (model.segment): concurrent plain
 * scopeAsync bodies would track each other's tensors. Do not nest one inside another (it would wait
 * for itself).
 */
export function exclusiveScopeAsync<T>(fn: () => Promise<T>): Promise<T> {
  const body = () => scopeAsync(fn);
  const run = exclusiveQueue.then(body, body);
  exclusiveQueue = run.catch(() => undefined);
  return run;
}

/** Number of open scopes (tests use it to check that scopes are balanced). */
export function scopeDepth(): number {
  return stack.length;
}
