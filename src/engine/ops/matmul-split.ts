/**
 * Split-K for thin products: C = op(A)·B with A read transposed, when C has too few output tiles
 * to keep the adapter busy and K is long. That is the shape of every weight gradient
 * (dW = dYᵀ·X: M, N = a layer's widths, K = batch x tokens): a 64 x 64 projection trained on 8 x
 * 485 tokens is one 64x64 workgroup looping over 3880 k, while a GPU has 100+ cores.
 *
 * The product is cut into S slices of K/S consecutive k (S divides K). With A stored [K, M] and B
 * [K, N] a slice is a contiguous block of rows of each, so the S partial products are ONE batched
 * launch of the same kernel (batch strides (K/S)*M and (K/S)*N), summed over the batch by the
 * reduce kernel. Results differ from the unsplit product by float rounding only (another order of
 * the same sum), and the choice depends on the shape and the adapter class alone, never on timing.
 *
 * Where: adapters that run the register-tiled kernels (real GPUs, SwiftShader). Not on lavapipe's
 * subgroup path: there the CPU's few threads are busy with a handful of workgroups, and measured
 * (scratch/lab-splitk.ts, GPU timestamps, one process) 64x64 at K = 38800 took 29.7 ms unsplit
 * against 29.1 / 28.6 / 29.9 ms at S = 2 / 4 / 8, and a single 24x32 workgroup at K = 163840
 * 19.8 ms against 19.3 / 21.4 / 19.5 ms: nothing to gain. No real GPU was at hand to tune the
 * target below; it is the order of an H100/H200's 132 multiprocessors.
 */

/** Workgroups below which a product is split, on adapters that split (see the file head). */
export const SPLIT_K_TARGET_WORKGROUPS = 128;
/** Shortest K slice worth a workgroup of its own. */
export const SPLIT_K_MIN_SLICE = 256;
/** Most slices (partial products held at once: S x M x N floats). */
export const SPLIT_K_MAX_SLICES = 32;

/**
 * The number of K slices for a product that launches `workgroups` workgroups: the largest divisor
 * S of K (2 <= S <= SPLIT_K_MAX_SLICES, K/S >= SPLIT_K_MIN_SLICE) not above what brings the
 * launch to `target` workgroups; 1 (no split) when the launch already reaches it, when `target`
 * is 0, or when K has no such divisor.
 */
export function splitKSlices(K: number, workgroups: number, target: number): number {
  if (target <= 0 || workgroups <= 0 || workgroups >= target) return 1;
  const want = Math.min(Math.ceil(target / workgroups), SPLIT_K_MAX_SLICES, Math.floor(K / SPLIT_K_MIN_SLICE));
  for (let s = want; s >= 2; s--) if (K % s === 0) return s;
  return 1;
}
