/**
 * CPU reference for the depthwise conv2d kernel: the direct gather's forward reference
 * (conv2d.ref.ts) with groups = Cin, which computes the same relation (each output channel co
 * reads input channel co / (Cout / Cin)). Buffers: x, w, [bias], out.
 */
import type { HostArray } from '../kernel-spec.js';
import { conv2dReference } from './conv2d.ref.js';
import type { Conv2dDepthwiseParams } from './conv2d-depthwise.js';

export function conv2dDepthwiseReference(p: Conv2dDepthwiseParams, buffers: HostArray[]): void {
  const { tileX: _tileX, tileY: _tileY, ...geom } = p;
  conv2dReference({ ...geom, variant: 'forward', groups: p.a[0] }, buffers);
}
