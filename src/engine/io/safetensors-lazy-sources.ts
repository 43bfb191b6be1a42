/**
 * Byte sources for the lazy safetensors reader (safetensors-lazy.ts): random access to a file-like
 * object through standard web APIs only (browser-safe; Node files: safetensors-lazy-node.ts).
 *
 *   bufferSource   ArrayBuffer / Uint8Array already in memory (reads are copies)
 *   blobSource     Blob or File: `blob.slice(a, b).arrayBuffer()`, nothing else is read
 *   urlSource      HTTP(S) through `fetch` with `Range: bytes=a-b` (206 expected; a server that
 *                  answers 200 with the whole body is read once and served from memory, with a note)
 *
 * Reads past the end throw CheckpointErrors naming the source ("truncated?").
 */
import { CheckpointError } from './tensor-data.js';

/** Random access to the bytes of one file-like object. */
export interface ByteSource {
  /** Used in error messages (a path, URL or '<buffer>'). */
  readonly name: string;
  /** Total size in bytes when known (a URL source learns it from its first response). */
  readonly size: number | undefined;
  /** Exactly `length` bytes starting at `offset` (a fresh array); throws when fewer exist. */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Releases the source (a Node file handle); optional. */
  close?(): Promise<void>;
  /** Counters for tests and diagnostics. */
  readonly stats?: { reads: number; bytesRead: number };
}

function checkRange(name: string, size: number | undefined, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new CheckpointError(`${name}: invalid read of ${length} bytes at ${offset}`);
  }
  if (size !== undefined && offset + length > size) {
    throw new CheckpointError(`${name}: read of ${length} bytes at ${offset} goes past the end of the ${size}-byte file (truncated?)`);
  }
}

function newStats(): { reads: number; bytesRead: number } {
  return { reads: 0, bytesRead: 0 };
}

/** A source over bytes already in memory (reads copy, so results may be kept and mutated). */
export function bufferSource(input: ArrayBuffer | Uint8Array, name = '<buffer>'): ByteSource {
  const bytes = input instanceof Uint8Array ? input : new Uint8Array(input);
  const stats = newStats();
  return {
    name,
    size: bytes.byteLength,
    stats,
    async read(offset, length) {
      checkRange(name, bytes.byteLength, offset, length);
      stats.reads++;
      stats.bytesRead += length;
      return bytes.slice(offset, offset + length);
    },
  };
}

/** A source over a Blob or File: each read slices the blob (no full copy in memory). */
export function blobSource(blob: Blob, name = (blob as { name?: string }).name || '<blob>'): ByteSource {
  const stats = newStats();
  return {
    name,
    size: blob.size,
    stats,
    async read(offset, length) {
      checkRange(name, blob.size, offset, length);
      stats.reads++;
      stats.bytesRead += length;
      const out = new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
      if (out.byteLength !== length) throw new CheckpointError(`${name}: blob read returned ${out.byteLength} of ${length} bytes`);
      return out;
    },
  };
}

export interface UrlSourceOptions {
  /** The fetch to use (default globalThis.fetch); tests and custom auth pass their own. */
  fetch?: typeof globalThis.fetch;
  /** Extra request headers (Authorization, ...). */
  headers?: Record<string, string>;
  /** Name for error messages (default: the URL). */
  name?: string;
}

/** Total size from `Content-Range: bytes a-b/TOTAL`, or undefined. */
function totalFromContentRange(value: string | null): number | undefined {
  const m = value === null ? null : /\/(\d+)\s*$/.exec(value);
  return m ? Number(m[1]) : undefined;
}

/**
 * A source over an HTTP(S) URL read with range requests. A server that ignores `Range` (status
 * 200) is read in full once and served from memory afterwards (`notes` says so).
 */
export function urlSource(url: string | URL, options: UrlSourceOptions = {}): ByteSource & { notes: string[] } {
  const href = String(url);
  const name = options.name ?? href;
  const doFetch = options.fetch ?? globalThis.fetch;
  const stats = newStats();
  const notes: string[] = [];
  let whole: Uint8Array | null = null;
  const source = {
    name,
    size: undefined as number | undefined,
    stats,
    notes,
    async read(offset: number, length: number): Promise<Uint8Array> {
      checkRange(name, source.size, offset, length);
      stats.reads++;
      stats.bytesRead += length;
      if (whole) return whole.slice(offset, offset + length);
      if (length === 0) return new Uint8Array(0);
      let response: Response;
      try {
        response = await doFetch(href, { headers: { ...options.headers, Range: `bytes=${offset}-${offset + length - 1}` } });
      } catch (err) {
        throw new CheckpointError(`${name}: request failed (${(err as Error).message})`, { cause: err });
      }
      if (response.status === 206) {
        const range = response.headers.get('content-range');
        const start = range === null ? null : /bytes\s+(\d+)-/.exec(range);
        if (start && Number(start[1]) !== offset) {
          throw new CheckpointError(`${name}: asked for bytes from ${offset}, the server sent '${range}'`);
        }
        const total = totalFromContentRange(range);
        if (total !== undefined) source.size = total;
        const out = new Uint8Array(await response.arrayBuffer());
        if (out.byteLength !== length) {
          throw new CheckpointError(`${name}: range request for ${length} bytes at ${offset} returned ${out.byteLength} bytes (truncated file?)`);
        }
        return out;
      }
      if (response.status === 416) {
        throw new CheckpointError(`${name}: range ${offset}-${offset + length - 1} not satisfiable (the file is shorter; truncated?)`);
      }
      if (response.status === 200) {
        whole = new Uint8Array(await response.arrayBuffer());
        source.size = whole.byteLength;
        notes.push(`${name}: the server ignored the Range header; the whole file (${whole.byteLength} bytes) was downloaded once`);
        checkRange(name, source.size, offset, length);
        return whole.slice(offset, offset + length);
      }
      throw new CheckpointError(`${name}: HTTP ${response.status} ${response.statusText}`.trimEnd());
    },
  };
  return source;
}

