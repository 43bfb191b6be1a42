/**
 * Where a dataset's files come from. A source maps '/'-separated paths relative to the dataset root
 * (`anns/test.json`, `images/a.png`, `masks/mask_1/a.png`) to bytes. Browser-safe sources live here
 * (in memory, over HTTP); the folder source is in source-node.ts.
 */

export interface DatasetSource {
  /** A label for messages: the folder, the URL or 'memory:<name>'. */
  readonly location: string;
  /** The file's bytes, or null when it does not exist; throws for any other failure. */
  read(path: string): Promise<Uint8Array | null>;
}

/** Files held in memory (the synthetic generator's output, files picked in a browser, tests). */
export function memorySource(
  files: ReadonlyMap<string, Uint8Array> | Readonly<Record<string, Uint8Array>>,
  location = 'memory',
): DatasetSource {
  const map = files instanceof Map ? files : new Map(Object.entries(files));
  return {
    location,
    read: async (path) => map.get(path) ?? null,
  };
}

/** Files under a base URL, fetched on demand (404 = missing). */
export function urlSource(baseUrl: string, fetchFn: typeof fetch = fetch): DatasetSource {
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  return {
    location: base,
    read: async (path) => {
      const url = base + path.split('/').map(encodeURIComponent).join('/');
      const response = await fetchFn(url);
      if (response.status === 404) return null;
      if (!response.ok) throw new Error(`HTTP ${response.status} ${response.statusText}`);
      return new Uint8Array(await response.arrayBuffer());
    },
  };
}
