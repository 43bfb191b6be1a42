/**
 * A plain-TypeScript UNet forward (batch 1, NCHW Float32Arrays), written from the architecture
 * description independently of the engine's ops: the reference for test/models/unet.test.ts.
 * `p` maps torch-style parameter names to their values.
 */
export function referenceUNetForward(p: Map<string, Float32Array>, x: Float32Array, cin: number, h: number, w: number, depth: number): Float32Array {
  type Map3 = { d: Float32Array; c: number; h: number; w: number };
  const conv = (m: Map3, name: string, cout: number, k: number, reluOut: boolean): Map3 => {
    const wt = p.get(`${name}.weight`)!;
    const bias = p.get(`${name}.bias`)!;
    const pad = (k - 1) / 2;
    const out = new Float32Array(cout * m.h * m.w);
    for (let o = 0; o < cout; o++) {
      for (let y = 0; y < m.h; y++) {
        for (let xx = 0; xx < m.w; xx++) {
          let s = bias[o]!;
          for (let i = 0; i < m.c; i++) {
            for (let ky = 0; ky < k; ky++) {
              for (let kx = 0; kx < k; kx++) {
                const yy = y + ky - pad;
                const xi = xx + kx - pad;
                if (yy < 0 || yy >= m.h || xi < 0 || xi >= m.w) continue;
                s += wt[((o * m.c + i) * k + ky) * k + kx]! * m.d[(i * m.h + yy) * m.w + xi]!;
              }
            }
          }
          out[(o * m.h + y) * m.w + xx] = reluOut ? Math.max(0, s) : s;
        }
      }
    }
    return { d: out, c: cout, h: m.h, w: m.w };
  };
  const double = (m: Map3, name: string, cout: number) => conv(conv(m, `${name}.conv1`, cout, 3, true), `${name}.conv2`, cout, 3, true);
  const pool = (m: Map3): Map3 => {
    const out = new Float32Array(m.c * (m.h / 2) * (m.w / 2));
    for (let c = 0; c < m.c; c++) {
      for (let y = 0; y < m.h / 2; y++) {
        for (let xx = 0; xx < m.w / 2; xx++) {
          const at = (dy: number, dx: number) => m.d[(c * m.h + 2 * y + dy) * m.w + 2 * xx + dx]!;
          out[(c * (m.h / 2) + y) * (m.w / 2) + xx] = Math.max(at(0, 0), at(0, 1), at(1, 0), at(1, 1));
        }
      }
    }
    return { d: out, c: m.c, h: m.h / 2, w: m.w / 2 };
  };
  const upsample = (m: Map3, name: string, cout: number): Map3 => {
    const wt = p.get(`${name}.weight`)!; // [Cin, Cout, 2, 2]
    const bias = p.get(`${name}.bias`)!;
    const out = new Float32Array(cout * m.h * 2 * m.w * 2);
    for (let o = 0; o < cout; o++) {
      for (let y = 0; y < 2 * m.h; y++) {
        for (let xx = 0; xx < 2 * m.w; xx++) {
          let s = bias[o]!;
          for (let i = 0; i < m.c; i++) s += wt[((i * cout + o) * 2 + (y % 2)) * 2 + (xx % 2)]! * m.d[(i * m.h + (y >> 1)) * m.w + (xx >> 1)]!;
          out[(o * 2 * m.h + y) * 2 * m.w + xx] = s;
        }
      }
    }
    return { d: out, c: cout, h: 2 * m.h, w: 2 * m.w };
  };
  const base = p.get('down.0.conv1.bias')!.length;
  const skips: Map3[] = [];
  let m: Map3 = { d: x, c: cin, h, w };
  for (let i = 0; i < depth; i++) {
    skips.push(double(m, `down.${i}`, base * 2 ** i));
    m = pool(skips[i]!);
  }
  m = double(m, 'bottleneck', base * 2 ** depth);
  for (let i = depth - 1; i >= 0; i--) {
    const up = upsample(m, `up.${i}.upsample`, base * 2 ** i);
    const skip = skips[i]!;
    const cat = new Float32Array(skip.d.length + up.d.length);
    cat.set(skip.d);
    cat.set(up.d, skip.d.length);
    m = double({ d: cat, c: skip.c + up.c, h: skip.h, w: skip.w }, `up.${i}.conv`, base * 2 ** i);
  }
  return conv(m, 'head', 1, 1, false).d;
}
