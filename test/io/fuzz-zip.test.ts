import { describe, it } from 'vitest';
import { crisTiny } from './helpers/fixtures.js';
import { expectFuzzClean, tail } from './helpers/fuzz.js';

// The zip fixtures: data.pkl is the first record (~45 KB), the central directory the last ~30 KB.
describe('fuzzing the torch zip fixtures (seeded; see helpers/fuzz.ts)', () => {
  it('weights.pth: every mutation loads or fails cleanly', () => {
    const bytes = crisTiny('weights.pth');
    expectFuzzClean({ name: 'weights.pth', bytes, mutations: 600, hot: [[0, 45_000], tail(bytes, 30_000)] }, 0x5eed);
  });

  it('checkpoint_train_format.pth: every mutation loads or fails cleanly', () => {
    const bytes = crisTiny('checkpoint_train_format.pth');
    expectFuzzClean({ name: 'checkpoint_train_format.pth', bytes, mutations: 400, hot: [[0, 37_500], tail(bytes, 30_000)] }, 0x5eed + 1);
  });
});
