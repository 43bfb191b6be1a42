/**
 * Files in the page: what a file input or a drop gives (files with their paths inside a picked or
 * dropped folder), downloads, and the assets the build ships next to the bundle.
 */

/** A picked file and its '/'-separated path relative to what was picked ('config.json', 'anns/train.json'). */
export interface PickedFile {
  path: string;
  file: File;
}

/** Drops the first path segment when every file shares it (a picked folder's own name). */
export function stripCommonFolder(files: PickedFile[]): PickedFile[] {
  if (files.length === 0) return files;
  const first = files[0]!.path.split('/')[0]!;
  const shared = files.every((f) => f.path.includes('/') && f.path.split('/')[0] === first);
  return shared ? files.map((f) => ({ path: f.path.slice(first.length + 1), file: f.file })) : files;
}

/** The files of an <input type=file> (with webkitdirectory, their paths inside the folder). */
export function filesFromInput(input: HTMLInputElement): PickedFile[] {
  const list = Array.from(input.files ?? []).map((file) => ({ path: file.webkitRelativePath || file.name, file }));
  return stripCommonFolder(list);
}

function entryFile(entry: FileSystemFileEntry): Promise<File> {
  return new Promise((resolve, reject) => entry.file(resolve, reject));
}

function readAllEntries(reader: FileSystemDirectoryReader): Promise<FileSystemEntry[]> {
  // readEntries returns at most ~100 entries per call: call until it returns none.
  return new Promise((resolve, reject) => {
    const all: FileSystemEntry[] = [];
    const next = () =>
      reader.readEntries((batch) => {
        if (batch.length === 0) return resolve(all);
        all.push(...batch);
        next();
      }, reject);
    next();
  });
}

async function walkEntry(entry: FileSystemEntry, prefix: string, out: PickedFile[]): Promise<void> {
  if (entry.isFile) {
    out.push({ path: prefix + entry.name, file: await entryFile(entry as FileSystemFileEntry) });
  } else if (entry.isDirectory) {
    const children = await readAllEntries((entry as FileSystemDirectoryEntry).createReader());
    for (const child of children) await walkEntry(child, `${prefix}${entry.name}/`, out);
  }
}

/** The files of a drop, folders walked recursively. */
export async function filesFromDrop(event: DragEvent): Promise<PickedFile[]> {
  const items = Array.from(event.dataTransfer?.items ?? []);
  const entries = items.map((item) => item.webkitGetAsEntry?.() ?? null);
  if (entries.length > 0 && entries.every((e) => e !== null)) {
    const out: PickedFile[] = [];
    for (const entry of entries) await walkEntry(entry!, '', out);
    return stripCommonFolder(out);
  }
  return Array.from(event.dataTransfer?.files ?? []).map((file) => ({ path: file.name, file }));
}

/** Makes `el` accept drops; `onFiles` gets what was dropped (errors go to `onError`). */
export function setupDropZone(el: HTMLElement, onFiles: (files: PickedFile[]) => Promise<void>, onError: (err: unknown) => void): void {
  el.addEventListener('dragover', (event) => {
    event.preventDefault();
    el.classList.add('over');
  });
  el.addEventListener('dragleave', () => el.classList.remove('over'));
  el.addEventListener('drop', (event) => {
    event.preventDefault();
    el.classList.remove('over');
    filesFromDrop(event)
      .then(onFiles)
      .catch(onError);
  });
}

/** Wires a file input: `onFiles` gets the picked files; the input is reset so the same pick fires again. */
export function onInputFiles(input: HTMLInputElement, onFiles: (files: PickedFile[]) => Promise<void>, onError: (err: unknown) => void): void {
  input.addEventListener('change', () => {
    const files = filesFromInput(input);
    input.value = '';
    if (files.length > 0) onFiles(files).catch(onError);
  });
}

/** Starts a download of `bytes` as `name`. */
export function downloadBytes(bytes: Uint8Array, name: string, type = 'application/octet-stream'): void {
  const url = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** An asset shipped next to the bundle (web/dist/<path>), as bytes. */
export async function fetchAsset(path: string): Promise<Uint8Array> {
  const url = new URL(path, document.baseURI);
  let response: Response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw new Error(`${path}: cannot fetch it from the server (${(err as Error).message})`);
  }
  if (!response.ok) throw new Error(`${path}: the server answered HTTP ${response.status} ${response.statusText}`.trimEnd());
  return new Uint8Array(await response.arrayBuffer());
}

/** The file name's extension, lower case, without the dot ('' when none). */
export function extensionOf(name: string): string {
  const base = name.split('/').pop() ?? name;
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(dot + 1).toLowerCase() : '';
}

export function formatMs(ms: number | null): string {
  if (ms === null) return '-';
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(0)} ms`;
}
