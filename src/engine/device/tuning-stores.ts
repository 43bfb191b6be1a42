/**
 * Browser-safe tuning stores: in memory (per process or page), and IndexedDB (kept across page
 * loads), which falls back to memory where IndexedDB is missing or refuses to open (private modes,
 * Node). The Node file store is in tuning-node.ts. autotune validates whatever a store returns.
 */
import type { TuningStore } from './tuning.js';
import type { TuningTable } from './tuning-table.js';

/** Tables in a Map; loads and saves copy, so callers never share a table with the store. */
export function memoryTuningStore(where = 'memory'): TuningStore {
  const tables = new Map<string, TuningTable>();
  return {
    where,
    async load(key) {
      const t = tables.get(key);
      return t === undefined ? undefined : structuredClone(t);
    },
    async save(key, table) {
      tables.set(key, structuredClone(table));
    },
  };
}

const DB_NAME = 'webvlsm-tuning';
const OBJECT_STORE = 'tables';

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB request failed'));
  });
}

function openDb(factory: IDBFactory): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = factory.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(OBJECT_STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error(`IndexedDB '${DB_NAME}' failed to open`));
    req.onblocked = () => reject(new Error(`IndexedDB '${DB_NAME}' is blocked by another tab`));
  });
}

/**
 * Tables in the IndexedDB database 'webvlsm-tuning' (object store 'tables', keyed by adapter key).
 * Where IndexedDB is missing, or fails to open, it behaves as memoryTuningStore (and says so in
 * `where`, which log lines show).
 */
export function indexedDbTuningStore(factory: IDBFactory | undefined = (globalThis as { indexedDB?: IDBFactory }).indexedDB): TuningStore {
  if (!factory) return memoryTuningStore('memory (no IndexedDB here)');
  const fallback = memoryTuningStore();
  let db: Promise<IDBDatabase | null> | null = null;
  const store: TuningStore & { where: string } = {
    where: `IndexedDB ${DB_NAME}`,
    async load(key) {
      const d = await open();
      if (!d) return fallback.load(key);
      const value = await request(d.transaction(OBJECT_STORE, 'readonly').objectStore(OBJECT_STORE).get(key));
      return value as TuningTable | undefined;
    },
    async save(key, table) {
      const d = await open();
      if (!d) return fallback.save(key, table);
      const tx = d.transaction(OBJECT_STORE, 'readwrite');
      tx.objectStore(OBJECT_STORE).put(table, key);
      await new Promise<void>((resolve, reject) => {
        tx.oncomplete = () => resolve();
        tx.onerror = () => reject(tx.error ?? new Error('IndexedDB write failed'));
        tx.onabort = () => reject(tx.error ?? new Error('IndexedDB write aborted'));
      });
    },
  };
  function open(): Promise<IDBDatabase | null> {
    db ??= openDb(factory!).catch((err: unknown) => {
      store.where = `memory (IndexedDB failed to open: ${(err as Error).message})`;
      return null;
    });
    return db;
  }
  return store;
}
