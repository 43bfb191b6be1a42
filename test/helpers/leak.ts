import { expect } from 'vitest';
import * as E from '../../src/engine/index.js';

/**
 * Runs f forward only, then forward + backward, and checks that nothing outlives it but the leaf
 * gradients (which it then frees): the device's live buffer count returns to where it started.
 */
export async function expectNoLeak(device: E.Device, leaves: E.Tensor[], f: () => E.Tensor): Promise<void> {
  const before = device.stats().liveBuffers;
  E.scope(() => {
    f(); // forward only: output and intermediates die with the scope, the tape too
  });
  const loss = E.scope(() => E.sum(f()));
  E.backward(loss);
  loss.dispose();
  for (const leaf of leaves) {
    leaf.grad?.dispose();
    leaf.grad = null;
  }
  await device.sync();
  expect(device.stats().liveBuffers).toBe(before);
}
