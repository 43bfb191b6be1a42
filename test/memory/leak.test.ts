/**
 * A training step must leave the device exactly as it found it: after the first iteration (which
 * creates the optimizer state and the gradients), every further forward + backward + AdamW step
 * ends with the same live buffers and bytes, and the pool stops growing.
 */
import { describe, expect, it } from 'vitest';
import * as E from '../../src/engine/index.js';
import { Linear, createRng } from '../../src/models/nn/index.js';
import { AdamW } from '../../src/train/optim.js';
import { testDevices } from '../helpers/devices.js';
import { randomNormal } from '../helpers/gradcheck.js';

class Mlp extends E.Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(device: E.Device) {
    super();
    const rng = createRng(42);
    this.fc1 = this.registerModule('fc1', new Linear(8, 16, { device, rng }));
    this.fc2 = this.registerModule('fc2', new Linear(16, 1, { device, rng }));
  }
  forward(x: E.Tensor): E.Tensor {
    return this.fc2.forward(E.relu(this.fc1.forward(x)));
  }
}

describe.each(await testDevices())('memory on %s', (_name, device) => {
  it('50 iterations of forward + backward + AdamW end with the same live buffers as the first', async () => {
    const baseline = device.stats();
    const model = new Mlp(device);
    const x = E.Tensor.fromArray(randomNormal(4 * 8, 3), [4, 8], { device });
    const target = E.Tensor.fromArray([1, 0, 0, 1], [4, 1], { device });
    const opt = new AdamW(model.namedParameters(), { lr: 0.01 });
    const snapshots: E.DeviceStats[] = [];
    const losses: number[] = [];
    for (let i = 0; i < 50; i++) {
      opt.zeroGrad();
      const loss = E.scope(() => E.bceWithLogits(model.forward(x), target));
      E.backward(loss);
      opt.step();
      losses.push(await loss.item());
      loss.dispose();
      snapshots.push(device.stats());
    }
    const first = snapshots[0]!;
    const last = snapshots[49]!;
    expect(last.liveBuffers).toBe(first.liveBuffers);
    expect(last.liveBytes).toBe(first.liveBytes);
    for (const s of snapshots) expect(s.liveBuffers).toBe(first.liveBuffers);
    // What lives: 4 parameters + their 4 gradients + 8 AdamW moments, plus x and target.
    expect(first.liveBuffers - baseline.liveBuffers).toBe(4 + 4 + 8 + 2);
    if (device.kind === 'webgpu') {
      // The pool reaches a steady state: no new GPU buffers after the first few iterations
      // (on the CPU device `created` counts every allocation, and nothing is pooled).
      expect(last.created).toBe(snapshots[4]!.created);
      expect(last.pooledBuffers).toBe(snapshots[4]!.pooledBuffers);
      expect(last.pooledBuffers).toBeLessThan(100);
    }
    // And it trained.
    expect(losses[49]!).toBeLessThan(losses[0]!);

    opt.zeroGrad();
    opt.dispose();
    model.dispose();
    x.dispose();
    target.dispose();
    const end = device.stats();
    expect(end.liveBuffers).toBe(baseline.liveBuffers);
    expect(end.liveBytes).toBe(baseline.liveBytes);
  });
});
