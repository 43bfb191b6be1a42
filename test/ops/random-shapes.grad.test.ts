/**
 * Finite-difference gradient checks on randomly drawn shapes (seeded, so failures reproduce):
 * each differentiable op gets a few shapes it has not been hand-tuned for: odd sizes, size-1
 * dims, broadcasting partners, different ranks.
 */
import { describe, it } from 'vitest';
import * as E from '../../src/engine/index.js';
import { testDevices } from '../helpers/devices.js';
import { gradcheck, seededRandom } from '../helpers/gradcheck.js';

const rand = seededRandom(20261128);
const int = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
const shapeOf = (rank: number, lo = 1, hi = 5): number[] => Array.from({ length: rank }, () => int(lo, hi));
/** A shape that broadcasts against `s`: some dims set to 1, maybe fewer leading dims. */
const broadcastPartner = (s: number[]): number[] => s.slice(int(0, s.length - 1)).map((d) => (rand() < 0.4 ? 1 : d));

type Draw = { name: string; shapes: number[][]; f: (x: E.Tensor[]) => E.Tensor };

function draws(): Draw[] {
  const out: Draw[] = [];
  for (let k = 0; k < 2; k++) {
    const s = shapeOf(int(1, 4));
    out.push({ name: `mul ${s}`, shapes: [s, broadcastPartner(s)], f: ([a, b]) => E.mul(a!, b!) });
    out.push({ name: `sub ${s}`, shapes: [broadcastPartner(s), s], f: ([a, b]) => E.sub(a!, b!) });
    out.push({ name: `gelu ${s}`, shapes: [s], f: ([a]) => E.gelu(a!) });
    const axis = int(0, s.length - 1);
    out.push({ name: `sum axis ${axis} of ${s}`, shapes: [s], f: ([a]) => E.sum(a!, axis) });
    out.push({ name: `softmax axis ${axis} of ${s}`, shapes: [s], f: ([a]) => E.softmax(a!, axis) });
    const d = int(2, 9);
    const lead = shapeOf(int(1, 2));
    out.push({ name: `layerNorm ${[...lead, d]}`, shapes: [[...lead, d], [d], [d]], f: ([x, w, b]) => E.layerNorm(x!, w!, b!) });
    const [m, kk, n] = [int(1, 9), int(1, 9), int(1, 9)];
    const batch = shapeOf(int(0, 2), 1, 3);
    out.push({ name: `matmul ${[...batch, m, kk]}x${[kk, n]}`, shapes: [[...batch, m, kk], [kk, n]], f: ([a, b]) => E.matmul(a!, b!) });
    out.push({ name: `linear ${[m, kk]}->${n}`, shapes: [[m, kk], [n, kk], [n]], f: ([x, w, b]) => E.linear(x!, w!, b!) });
    const [h, w] = [int(3, 8), int(3, 8)];
    const ks = int(1, 3);
    const stride = int(1, 2);
    const pad = int(0, Math.floor(ks / 2));
    const cin = int(1, 3);
    const cout = int(1, 3);
    out.push({
      name: `conv2d ${cin}->${cout} ${h}x${w} k${ks} s${stride} p${pad}`,
      shapes: [[1, cin, h, w], [cout, cin, ks, ks], [cout]],
      f: ([x, wt, b]) => E.conv2d(x!, wt!, b!, { stride, padding: pad }),
    });
    out.push({
      name: `convTranspose2d ${cin}->${cout} ${h}x${w} k${ks + 1} s${stride}`,
      shapes: [[1, cin, h, w], [cin, cout, ks + 1, ks + 1], [cout]],
      f: ([x, wt, b]) => E.convTranspose2d(x!, wt!, b!, { stride }),
    });
    const size: [number, number] = [int(2, 9), int(2, 9)];
    out.push({ name: `bilinear ${h}x${w}->${size}`, shapes: [[1, 2, h, w]], f: ([x]) => E.interpolate(x!, { size, mode: 'bilinear' }) });
    out.push({ name: `adaptiveAvgPool2d ${h}x${w}->${size}`, shapes: [[1, 2, h, w]], f: ([x]) => E.adaptiveAvgPool2d(x!, size) });
    const perm = s.map((_, i) => i).sort(() => rand() - 0.5);
    out.push({ name: `permute ${s} by ${perm}`, shapes: [s], f: ([a]) => E.permute(a!, perm) });
  }
  return out;
}

const DRAWS = draws();

describe.each(await testDevices())('gradients on random shapes on %s', (_name, device) => {
  for (const d of DRAWS) {
    it(d.name, async () => {
      await gradcheck(device, d.f, d.shapes, { samples: 6 });
    });
  }
});
