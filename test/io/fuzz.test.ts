import { describe, it } from 'vitest';
import { crisTiny } from './helpers/fixtures.js';
import { expectFuzzClean } from './helpers/fuzz.js';
import { stateDictPickle } from './helpers/pickle-writer.js';
import { torchscriptArchive } from './helpers/torchscript-fixture.js';
import { f32Bytes, writeZip } from './helpers/zip-writer.js';

describe('fuzzing the legacy, safetensors and TorchScript readers (seeded; see helpers/fuzz.ts)', () => {
  it('proj_legacy_format.pth: every mutation loads or fails cleanly', () => {
    // Five pickles (the first 2216 bytes), then 8-byte element counts between the storages.
    const bytes = crisTiny('proj_legacy_format.pth');
    expectFuzzClean({ name: 'proj_legacy_format.pth', bytes, mutations: 2000, hot: [[0, 2300]] }, 0x5eed + 2);
  });

  it('weights.safetensors: every mutation loads or fails cleanly', () => {
    const bytes = crisTiny('weights.safetensors');
    expectFuzzClean({ name: 'weights.safetensors', bytes, mutations: 500, hot: [[0, 28_000]] }, 0x5eed + 3);
  });

  it('a synthetic TorchScript archive: every mutation loads or fails cleanly', () => {
    const bytes = torchscriptArchive();
    expectFuzzClean({ name: 'ViT-B-16.pt', bytes, mutations: 1500, hot: [[0, bytes.length]] }, 0x5eed + 4);
  });

  it('a ZIP64 archive with a deflated data.pkl: every mutation loads or fails cleanly', () => {
    const pickle = stateDictPickle([
      ['a', { storageType: 'FloatStorage', key: '0', numel: 6, shape: [2, 3] }],
      ['b', { storageType: 'HalfStorage', key: '1', numel: 4, shape: [2, 2], stride: [1, 2] }],
    ]);
    const bytes = writeZip(
      [
        { name: 'archive/data.pkl', data: pickle, method: 8 },
        { name: 'archive/data/0', data: f32Bytes([1, 2, 3, 4, 5, 6]) },
        { name: 'archive/data/1', data: new Uint8Array(8) },
        { name: 'archive/byteorder', data: new TextEncoder().encode('little') },
      ],
      { zip64: true },
    );
    expectFuzzClean({ name: 'zip64.pth', bytes, mutations: 1500, hot: [[0, bytes.length]] }, 0x5eed + 5);
  });
});
