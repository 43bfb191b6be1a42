import { describe, expect, it } from 'vitest';
import { readCheckpoint } from '../../src/engine/io/checkpoint.js';
import { PyObject } from '../../src/engine/io/pickle.js';
import { PickledTensor } from '../../src/engine/io/torch-globals.js';
import { materializeTensor } from '../../src/engine/io/torch-tensors.js';
import { readTorchScript, readTorchScriptConstants } from '../../src/engine/io/torchscript.js';
import { CheckpointError, halfBitsToFloat32 } from '../../src/engine/io/tensor-data.js';
import { ZipArchive } from '../../src/engine/io/zip.js';
import { PickleWriter } from './helpers/pickle-writer.js';
import { TORCHSCRIPT_EXPECTED, torchscriptArchive } from './helpers/torchscript-fixture.js';
import { writeZip } from './helpers/zip-writer.js';

describe('TorchScript archives', () => {
  const bytes = torchscriptArchive();

  it('is detected by its constants.pkl and yields the state dict of the module graph', () => {
    const ckpt = readCheckpoint(bytes, 'ViT-B-16.pt');
    expect(ckpt.format).toBe('torchscript');
    expect([...ckpt.tensors.keys()].sort()).toEqual(Object.keys(TORCHSCRIPT_EXPECTED).sort());
    for (const [name, [dtype, shape]] of Object.entries(TORCHSCRIPT_EXPECTED)) {
      const t = ckpt.tensors.get(name)!;
      expect({ name, dtype: t.dtype, shape: t.shape }).toEqual({ name, dtype, shape });
    }
    expect(Array.from(ckpt.tensors.get('vocab_size')!.data as BigInt64Array)).toEqual([49408n]);
  });

  it('keeps fp16 weights as f16 bits, and converts every float tensor to f32 on request', () => {
    const raw = readCheckpoint(bytes, 'ViT-B-16.pt').tensors.get('visual.conv1.weight')!;
    expect(Array.from(halfBitsToFloat32(raw.data as Uint16Array))).toEqual([1, -2, 0.5, 65504]);
    const ckpt = readCheckpoint(bytes, 'ViT-B-16.pt', { float32: true });
    expect(ckpt.report).toEqual(['converted 6 f16/bf16/f64 tensors to f32']);
    for (const [name, [dtype, , expected]] of Object.entries(TORCHSCRIPT_EXPECTED)) {
      const t = ckpt.tensors.get(name)!;
      if (dtype === 'i64') continue;
      expect(t.dtype, name).toBe('f32');
      expect(Array.from(t.data as Float32Array), name).toEqual(expected.map(Math.fround));
    }
  });

  it('reads module classes as inert placeholders and never opens code/', () => {
    const parsed = readTorchScript(bytes, 'ViT-B-16.pt');
    expect(parsed.prefix).toBe('ViT-B-16/');
    const root = parsed.root as PyObject;
    expect(root).toBeInstanceOf(PyObject);
    expect(root.qualname).toBe('__torch__.multimodal.model.CLIP');
    const state = root.state as Map<string, unknown>;
    expect(state.get('device')).toBe('cuda:0');
    expect([...(state.get('dtype_info') as Map<string, number>)]).toEqual([['a', 1]]);
    // The debug_pkl entry holds invalid deflate data: reading it fails, loading the archive does not.
    const zip = new ZipArchive(bytes, 'ViT-B-16.pt');
    expect(() => zip.read('ViT-B-16/code/__torch__/multimodal/model.py.debug_pkl')).toThrow(CheckpointError);
    expect(new TextDecoder().decode(zip.read('ViT-B-16/code/__torch__/multimodal/model.py'))).toContain('os.system');
  });

  it('reads the constants tuple from constants/<key>', () => {
    const constants = readTorchScriptConstants(bytes, 'ViT-B-16.pt');
    expect(constants).toHaveLength(1);
    const t = materializeTensor(constants[0] as PickledTensor, 'c0');
    expect(Array.from(t.data as Float32Array)).toEqual([3, 4]);
  });

  it('a TorchScript global is refused when it appears in a plain torch.save archive', () => {
    const pickle = new PickleWriter(2).global('__torch__.model', 'CLIP').emptyTuple().newobj().done();
    const zip = writeZip([{ name: 'archive/data.pkl', data: pickle }]);
    expect(() => readCheckpoint(zip, 'fake.pth')).toThrow(/fake\.pth\/archive\/data\.pkl: refused global __torch__\.model\.CLIP/);
  });

  it('dangerous globals are refused inside TorchScript archives too', () => {
    const pickle = new PickleWriter(2).global('os', 'system').str('id').tuple(1).reduce().done();
    const zip = writeZip([
      { name: 'm/data.pkl', data: pickle },
      { name: 'm/constants.pkl', data: new PickleWriter(2).emptyTuple().done() },
    ]);
    expect(() => readCheckpoint(zip, 'evil.pt')).toThrow(/evil\.pt\/m\/data\.pkl: refused global os\.system/);
  });

  it('a root that is not a module object is an error', () => {
    const zip = writeZip([
      { name: 'm/data.pkl', data: new PickleWriter(2).emptyDict().done() },
      { name: 'm/constants.pkl', data: new PickleWriter(2).emptyTuple().done() },
    ]);
    expect(() => readCheckpoint(zip, 'odd.pt')).toThrow(/odd\.pt\/m\/data\.pkl: the root is not a TorchScript module object/);
  });
});
