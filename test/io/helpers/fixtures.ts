/** Reads the checkpoint fixtures under test/fixtures/cris_tiny (see SOURCES.md there). */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const CRIS_TINY_DIR = fileURLToPath(new URL('../../fixtures/cris_tiny/', import.meta.url));

export function crisTiny(name: string): Uint8Array {
  return new Uint8Array(readFileSync(CRIS_TINY_DIR + name));
}
