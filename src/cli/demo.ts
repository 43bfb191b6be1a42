/**
 * npm run demo: a small end-to-end check of the engine on the WebGPU device (or, without an
 * adapter, the CPU device, with a notice on how to install the driver).
 *
 * Task: synthetic "lesion segmentation". Each 1x16x16 image holds one bright disk of random size
 * and place on a noisy, shaded background, plus a dimmer distractor blob; the target mask is the
 * disk. A three-layer conv net (conv3x3 -> ReLU -> conv3x3 -> ReLU -> conv1x1) is trained with
 * BCE-with-logits + soft Dice by AdamW (the engine's fused `adamwStep`, one call per parameter).
 * Prints the device, the loss every few steps, and the held-out IoU before and after training.
 * Exits 1 if the loss does not go down.
 */
import {
  type Device,
  Tensor,
  add,
  adamwStep,
  backward,
  bceWithLogits,
  conv2d,
  greater,
  keep,
  mul,
  noGrad,
  relu,
  scopeAsync,
  setDefaultDevice,
  softDiceLoss,
  sum,
} from '../engine/index.js';
import { createRng } from '../models/nn/init.js';
import { pickDevice } from './gpu.js';

const SIZE = 16;
const TRAIN = 16;
const TEST = 8;
const STEPS = 60;
const HYPER = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 1e-4 };

function normal(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

/** Images [n, 1, H, W] and masks [n, 1, H, W]. */
function makeData(n: number, rand: () => number): { images: Float32Array; masks: Float32Array } {
  const images = new Float32Array(n * SIZE * SIZE);
  const masks = new Float32Array(n * SIZE * SIZE);
  for (let b = 0; b < n; b++) {
    const r = 2.5 + rand() * 2.5;
    const cy = r + rand() * (SIZE - 2 * r);
    const cx = r + rand() * (SIZE - 2 * r);
    const dy = rand() * SIZE;
    const dx = rand() * SIZE;
    const slope = (rand() - 0.5) * 0.04;
    for (let y = 0; y < SIZE; y++) {
      for (let x = 0; x < SIZE; x++) {
        const i = b * SIZE * SIZE + y * SIZE + x;
        const inside = (y - cy) ** 2 + (x - cx) ** 2 <= r * r;
        const distractor = Math.exp(-((y - dy) ** 2 + (x - dx) ** 2) / 3) * 0.45;
        masks[i] = inside ? 1 : 0;
        images[i] = (inside ? 1 : 0) + distractor + slope * (x + y) + 0.2 * normal(rand);
      }
    }
  }
  return { images, masks };
}

interface Param {
  name: string;
  value: Tensor;
  expAvg: Tensor;
  expAvgSq: Tensor;
}

/** PyTorch's default conv init: uniform(-1/sqrt(fanIn), 1/sqrt(fanIn)). */
function convParam(name: string, shape: number[], fanIn: number, rand: () => number, device: Device): Param {
  const n = shape.reduce((a, b) => a * b, 1);
  const bound = 1 / Math.sqrt(fanIn);
  const data = Float32Array.from({ length: n }, () => (rand() * 2 - 1) * bound);
  // Created outside any scope: parameters and optimizer state live for the whole run.
  return {
    name,
    value: Tensor.fromArray(data, shape, { device, requiresGrad: true }),
    expAvg: Tensor.zeros(shape, { device }),
    expAvgSq: Tensor.zeros(shape, { device }),
  };
}

function makeNet(device: Device, rand: () => number) {
  const hidden = 8;
  const params = [
    convParam('conv1.weight', [hidden, 1, 3, 3], 9, rand, device),
    convParam('conv1.bias', [hidden], 9, rand, device),
    convParam('conv2.weight', [hidden, hidden, 3, 3], hidden * 9, rand, device),
    convParam('conv2.bias', [hidden], hidden * 9, rand, device),
    convParam('head.weight', [1, hidden, 1, 1], hidden, rand, device),
    convParam('head.bias', [1], hidden, rand, device),
  ];
  const p = (i: number) => params[i]!.value;
  const forward = (x: Tensor): Tensor => {
    const h1 = relu(conv2d(x, p(0), p(1), { padding: 1 }));
    const h2 = relu(conv2d(h1, p(2), p(3), { padding: 1 }));
    return conv2d(h2, p(4), p(5));
  };
  return { params, forward };
}

/** Intersection over union of (logits > 0) with the mask, over the whole batch. */
async function iou(logits: Tensor, mask: Tensor): Promise<number> {
  return scopeAsync(async () => {
    const pred = greater(logits, Tensor.scalar(0, { device: logits.device }));
    const inter = await sum(mul(pred, mask)).item();
    const union = (await sum(pred).item()) + (await sum(mask).item()) - inter;
    return union > 0 ? inter / union : 1;
  });
}

async function main(): Promise<number> {
  const device = await pickDevice('The demo');
  setDefaultDevice(device);
  console.log(`device: ${device.kind} (${device.description})`);

  const rand = createRng(1234);
  const train = makeData(TRAIN, rand);
  const test = makeData(TEST, rand);
  const shape = (n: number) => [n, 1, SIZE, SIZE];
  const x = keep(Tensor.fromArray(train.images, shape(TRAIN), { device }));
  const y = keep(Tensor.fromArray(train.masks, shape(TRAIN), { device }));
  const xTest = keep(Tensor.fromArray(test.images, shape(TEST), { device }));
  const yTest = keep(Tensor.fromArray(test.masks, shape(TEST), { device }));
  const net = makeNet(device, rand);
  const nParams = net.params.reduce((a, p) => a + p.value.size, 0);
  console.log(`task: ${TRAIN} training and ${TEST} held-out 16x16 images; conv net with ${nParams} parameters; AdamW lr ${HYPER.lr}`);

  const testIou = () => scopeAsync(async () => iou(noGrad(() => net.forward(xTest)), yTest));
  console.log(`held-out IoU before training: ${(await testIou()).toFixed(3)}`);

  const losses: number[] = [];
  for (let step = 1; step <= STEPS; step++) {
    const loss = await scopeAsync(async () => {
      const logits = net.forward(x);
      const l = add(bceWithLogits(logits, y), softDiceLoss(logits, y));
      backward(l);
      noGrad(() => {
        for (const p of net.params) {
          adamwStep(p.value, p.value.grad!, p.expAvg, p.expAvgSq, { ...HYPER, step });
          p.value.grad!.dispose();
          p.value.grad = null;
        }
      });
      return l.item();
    });
    losses.push(loss);
    if (step === 1 || step % 5 === 0) console.log(`step ${String(step).padStart(3)}  loss ${loss.toFixed(4)}`);
  }

  const finalIou = await testIou();
  console.log(`held-out IoU after training:  ${finalIou.toFixed(3)}`);
  const first = losses[0]!;
  const last = losses[losses.length - 1]!;
  console.log(`loss ${first.toFixed(4)} -> ${last.toFixed(4)} on ${device.kind}`);
  if (!(last < first)) {
    console.error('demo: the loss did not go down');
    return 1;
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`demo: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
