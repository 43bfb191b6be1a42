/**
 * TorchScript archives (`torch.jit.save`; OpenAI CLIP `RN50.pt`, `ViT-B-16.pt`):
 *
 *   <prefix>/data.pkl          the module object graph: `__torch__.<...>` classes made with
 *                              GLOBAL + EMPTY_TUPLE + NEWOBJ and filled by BUILD with a dict of
 *                              attributes (submodules, parameters, buffers, flags)
 *   <prefix>/data/<key>        tensor bytes of data.pkl's storages
 *   <prefix>/constants.pkl     a tuple of the code's tensor constants; storages in constants/<key>
 *   <prefix>/code/..., extra/, version    TorchScript source and debug info: never read, never run
 *
 * The module classes are read as inert placeholders (their code is never looked at); the state
 * dict is every tensor attribute reachable from the root module, under its dotted attribute path
 * (`visual.conv1.weight`, `transformer.resblocks.0.attn.in_proj_weight`), which are the names
 * `model.state_dict()` reports. Non-tensor attributes (`training`, `input_resolution`, ...) are
 * dropped; callers filter to the keys their model expects (e.g. OpenAI CLIP keeps a few extra
 * tensors such as attention masks as plain attributes).
 *
 * Browser-safe: no Node imports.
 */
import { PyObject } from './pickle.js';
import { type TorchArchivePickle, type TorchZipOptions, requireArchivePrefix, unpickleArchiveRecord } from './torch-zip.js';
import { CheckpointError } from './tensor-data.js';
import { ZipArchive } from './zip.js';

/** Whether a zip archive is TorchScript (it has `<prefix>/constants.pkl`). */
export function isTorchScriptArchive(zip: ZipArchive, prefix: string): boolean {
  return zip.has(`${prefix}constants.pkl`);
}

function byteorder(zip: ZipArchive, prefix: string): boolean {
  const name = `${prefix}byteorder`;
  return !zip.has(name) || new TextDecoder().decode(zip.read(name)).trim() !== 'big';
}

/** Reads a TorchScript archive's module graph (tensors stay lazy until materialised). */
export function readTorchScript(input: Uint8Array | ZipArchive, source: string, options: TorchZipOptions = {}): TorchArchivePickle {
  const zip = input instanceof ZipArchive ? input : new ZipArchive(input, source, options.zipLimits);
  const prefix = requireArchivePrefix(zip);
  if (!isTorchScriptArchive(zip, prefix)) {
    throw new CheckpointError(`${zip.source}: no ${prefix}constants.pkl, so this is not a TorchScript archive`);
  }
  const littleEndian = byteorder(zip, prefix);
  const scriptOptions = { ...options, torchscript: true };
  const { value, protocol } = unpickleArchiveRecord(zip, prefix, 'data.pkl', 'data/', littleEndian, scriptOptions);
  if (!(value instanceof PyObject)) {
    throw new CheckpointError(`${zip.source}/${prefix}data.pkl: the root is not a TorchScript module object`);
  }
  return { root: value, prefix, littleEndian, protocol };
}

/** The tuple of tensor constants of the archive's code (rarely needed; not part of the state dict). */
export function readTorchScriptConstants(input: Uint8Array | ZipArchive, source: string, options: TorchZipOptions = {}): readonly unknown[] {
  const zip = input instanceof ZipArchive ? input : new ZipArchive(input, source, options.zipLimits);
  const prefix = requireArchivePrefix(zip);
  const scriptOptions = { ...options, torchscript: true };
  const { value } = unpickleArchiveRecord(zip, prefix, 'constants.pkl', 'constants/', byteorder(zip, prefix), scriptOptions);
  if (!Array.isArray(value)) throw new CheckpointError(`${zip.source}/${prefix}constants.pkl: not a tuple of constants`);
  return value;
}
