/**
 * The CRIS.pytorch options that `segment` and `eval` share: CRIS checkpoints store neither the
 * variant nor the word_len they were trained with, so the command line names them
 * (models/cris/api.ts): a published config name or a config .json, --word-len, --input-size.
 */
import { readFile } from 'node:fs/promises';
import { CRIS_CONFIGS, type CrisConfigName } from '../../models/cris/configs.js';
import { UsageError } from './command.js';

/** A short reason for a failed file read: 'no such file', 'permission denied', ... */
export function fileErrorReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'it is a folder, not a file';
  return (err as Error).message;
}

/** An integer flag >= min, or undefined when absent; a usage error names the command and flag. */
export function parseIntFlag(command: string, flag: string, text: string | undefined, min: number): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\s*\d+\s*$/.test(text) || !Number.isInteger(n) || n < min) throw new UsageError(`${command}: ${flag} must be an integer >= ${min}, got '${text}'`);
  return n;
}

/** --input-size: a positive multiple of 32 (the backbone downsamples by 32). */
export function parseInputSize(command: string, text: string | undefined): number | undefined {
  const size = parseIntFlag(command, '--input-size', text, 32);
  if (size !== undefined && size % 32 !== 0) throw new UsageError(`${command}: --input-size must be a multiple of 32, got ${size}`);
  return size;
}

/**
 * A CRIS config flag: a published name ('cris-r50', 'cris-r101') or a JSON file holding the config
 * (models/cris/config.ts) or a golden manifest with it under "config".
 */
export async function readCrisConfig(command: string, flag: string, text: string): Promise<CrisConfigName | Record<string, unknown>> {
  if (Object.hasOwn(CRIS_CONFIGS, text)) return text as CrisConfigName;
  if (!text.toLowerCase().endsWith('.json')) {
    throw new UsageError(`${command}: ${flag} must be ${Object.keys(CRIS_CONFIGS).join(', ')} or a .json file, got '${text}'`);
  }
  let raw: string;
  try {
    raw = await readFile(text, 'utf8');
  } catch (err) {
    throw new Error(`${text}: cannot read the CRIS config (${fileErrorReason(err)})`);
  }
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    throw new Error(`${text}: the CRIS config is not valid JSON (${(err as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${text}: the CRIS config must be a JSON object`);
  const obj = value as Record<string, unknown>;
  return typeof obj.config === 'object' && obj.config !== null && !('clip' in obj) ? (obj.config as Record<string, unknown>) : obj;
}
