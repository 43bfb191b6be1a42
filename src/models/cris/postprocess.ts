/**
 * CRIS outputs and training loss (docs/architectures.md §3.8):
 *
 * - loss (train.py / segmenter.py): BCE-with-logits (mean) of the logits [B, 1, h, w] against the
 *   ground-truth mask resized to h x w by nearest neighbour (PyTorch's legacy nearest).
 * - probabilities (test.py): sigmoid, then bicubic align_corners=True resize to the network input
 *   (416 x 416); medvlsm resizes the logits the same way inside its model.
 * - mask: probability > 0.35 (CRIS's test threshold).
 * The inverse letterbox warp back to the original image (cv2.warpAffine) belongs to preprocessing
 * and is not done here.
 */
import { Tensor, bceWithLogits, greater, interpolate, scope, sigmoid } from '../../engine/index.js';

/** CRIS's test-time threshold on sigmoid probabilities. */
export const CRIS_THRESHOLD = 0.35;

/** logits [B, 1, h, w], mask [B, 1, H, W] (0/1) -> scalar BCE-with-logits. */
export function crisLoss(logits: Tensor, mask: Tensor): Tensor {
  if (logits.rank !== 4 || mask.rank !== 4 || mask.shape[0] !== logits.shape[0] || mask.shape[1] !== logits.shape[1]) {
    throw new Error(`crisLoss: logits [${logits.shape.join(', ')}] and mask [${mask.shape.join(', ')}] must both be [B, 1, H, W]`);
  }
  const [h, w] = [logits.shape[2]!, logits.shape[3]!];
  return scope(() => {
    const target = mask.shape[2] === h && mask.shape[3] === w ? mask : interpolate(mask, { size: [h, w], mode: 'nearest' });
    return bceWithLogits(logits, target);
  });
}

/** sigmoid(logits) resized (bicubic, align_corners true) to `size` (default: 4x, the network input). */
export function crisProbabilities(logits: Tensor, size?: [number, number]): Tensor {
  if (logits.rank !== 4) throw new Error(`crisProbabilities: logits [${logits.shape.join(', ')}] must be [B, 1, h, w]`);
  const target = size ?? [logits.shape[2]! * 4, logits.shape[3]! * 4];
  return scope(() => interpolate(sigmoid(logits), { size: target, mode: 'bicubic', alignCorners: true }));
}

/** 1 where probability > threshold, else 0. */
export function crisMask(probabilities: Tensor, threshold = CRIS_THRESHOLD): Tensor {
  return scope(() => greater(probabilities, Tensor.scalar(threshold, { device: probabilities.device })));
}
