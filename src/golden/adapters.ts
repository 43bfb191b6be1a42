/**
 * One adapter per golden `op` name: how to run that PyTorch computation with engine ops.
 *
 * - `forward` adapters build the output from the case's inputs; the runner then compares `output`
 *   and, for L = sum(output * cotangent), backpropagates with dOut = cotangent and compares each
 *   `grad.<input>`.
 * - `custom` adapters compute every expected tensor themselves (the optimizer case).
 */
import { Tensor, noGrad } from '../engine/index.js';
import type { CaseContext } from './context.js';
import { ops } from './engine-ops.js';

export type OpAdapter =
  | { kind: 'forward'; forward: (ctx: CaseContext) => Tensor }
  | { kind: 'custom'; run: (ctx: CaseContext) => Promise<Map<string, ArrayLike<number>>> };

const forward = (fn: (ctx: CaseContext) => Tensor): OpAdapter => ({ kind: 'forward', forward: fn });

const unary = (name: 'relu' | 'sigmoid' | 'gelu' | 'geluTanh' | 'quickGelu'): OpAdapter =>
  forward((c) => ops[name](c.input('x')));

const matmulCase = forward((c) => ops.matmul(c.input('a'), c.input('b')));

const batchNormCase = forward((c) => {
  c.expectParam('training', false);
  return ops.batchNorm(
    c.input('x'),
    c.input('running_mean'),
    c.input('running_var'),
    c.optionalInput('weight') ?? null,
    c.optionalInput('bias') ?? null,
    c.num('eps', 1e-5),
  );
});

/** torch.optim.AdamW for `steps` steps on `num_params` parameters; compares p, m, v after each. */
async function adamw(c: CaseContext): Promise<Map<string, ArrayLike<number>>> {
  c.expectParam('amsgrad', false);
  c.expectParam('maximize', false);
  const betas = c.manifest.parameters.betas;
  if (!Array.isArray(betas) || betas.length !== 2 || !betas.every((b) => typeof b === 'number')) {
    throw new Error(`${c.manifest.case}: parameter 'betas' must be a pair of numbers`);
  }
  const hyper = {
    lr: c.num('lr'),
    beta1: betas[0] as number,
    beta2: betas[1] as number,
    eps: c.num('eps'),
    weightDecay: c.num('weight_decay'),
  };
  const steps = c.int('steps');
  const numParams = c.int('num_params');
  const out = new Map<string, ArrayLike<number>>();
  for (let p = 0; p < numParams; p++) {
    const param = c.tensor(`param${p}.initial`);
    const expAvg = Tensor.zeros(param.shape, { device: c.device });
    const expAvgSq = Tensor.zeros(param.shape, { device: c.device });
    for (let step = 1; step <= steps; step++) {
      const grad = c.tensor(`param${p}.grad.step${step}`);
      noGrad(() => ops.adamwStep(param, grad, expAvg, expAvgSq, { ...hyper, step }));
      out.set(`param${p}.after_step${step}`, await param.read());
      out.set(`param${p}.exp_avg.after_step${step}`, await expAvg.read());
      out.set(`param${p}.exp_avg_sq.after_step${step}`, await expAvgSq.read());
    }
  }
  return out;
}

export const ADAPTERS: Readonly<Record<string, OpAdapter>> = {
  relu: unary('relu'),
  sigmoid: unary('sigmoid'),
  gelu_erf: unary('gelu'),
  gelu_tanh: unary('geluTanh'),
  quick_gelu: unary('quickGelu'),

  softmax: forward((c) => ops.softmax(c.input('x'), c.int('dim', -1))),

  layer_norm: forward((c) => {
    const normalized = c.manifest.parameters.normalized_shape;
    const x = c.input('x');
    if (Array.isArray(normalized) && (normalized.length !== 1 || normalized[0] !== x.shape[x.rank - 1])) {
      throw new Error(`layer_norm: only normalisation over the last dim is supported (normalized_shape ${JSON.stringify(normalized)})`);
    }
    return ops.layerNorm(x, c.optionalInput('weight') ?? null, c.optionalInput('bias') ?? null, c.num('eps', 1e-5));
  }),
  batch_norm1d_eval: batchNormCase,
  batch_norm2d_eval: batchNormCase,

  binary_cross_entropy_with_logits: forward((c) => {
    c.expectParam('reduction', 'mean');
    c.expectParam('pos_weight', null);
    c.expectParam('weight', null);
    return ops.bceWithLogits(c.input('logits'), c.input('target'));
  }),
  soft_dice_loss: forward((c) => ops.softDiceLoss(c.input('logits'), c.input('target'), c.num('smooth', 1))),
  bce_plus_soft_dice: forward((c) => {
    const logits = c.input('logits');
    const target = c.input('target');
    return ops.add(ops.bceWithLogits(logits, target), ops.softDiceLoss(logits, target, c.num('dice_smooth', 1)));
  }),

  matmul: matmulCase,
  batched_matmul: matmulCase,
  linear: forward((c) => ops.linear(c.input('x'), c.input('weight'), c.optionalInput('bias'))),

  scaled_dot_product_attention: forward((c) => {
    const scale = c.manifest.parameters.scale;
    return ops.scaledDotProductAttention(c.input('q'), c.input('k'), c.input('v'), {
      causal: c.bool('causal', false),
      mask: c.optionalInput('attn_mask'),
      // "1/sqrt(head_dim)" in the manifests is the default; a number overrides it.
      scale: typeof scale === 'number' ? scale : undefined,
    });
  }),
  multi_head_attention: forward((c) => {
    c.expectParam('dropout', 0);
    const query = c.input('query');
    // Self-attention cases store only the query: key and value are the same tensor.
    const key = c.optionalInput('key') ?? query;
    const value = c.optionalInput('value') ?? key;
    return ops.multiHeadAttention(query, key, value, {
      inProjWeight: c.input('in_proj_weight'),
      inProjBias: c.optionalInput('in_proj_bias'),
      outProjWeight: c.input('out_proj_weight'),
      outProjBias: c.optionalInput('out_proj_bias'),
      numHeads: c.int('num_heads'),
      attnMask: c.optionalInput('attn_mask'),
      // BOOL in the file, read as float 0/1: nonzero = ignore that key.
      keyPaddingMask: c.optionalInput('key_padding_mask'),
      batchFirst: c.bool('batch_first', false),
      causal: c.bool('causal', false),
    });
  }),

  conv2d: forward((c) => {
    c.expectParam('padding_mode', 'zeros');
    return ops.conv2d(c.input('x'), c.input('weight'), c.optionalInput('bias'), {
      stride: c.pair('stride', 1),
      padding: c.pair('padding', 0),
      dilation: c.pair('dilation', 1),
      groups: c.int('groups', 1),
    });
  }),
  conv_transpose2d: forward((c) =>
    ops.convTranspose2d(c.input('x'), c.input('weight'), c.optionalInput('bias'), {
      stride: c.pair('stride', 1),
      padding: c.pair('padding', 0),
      outputPadding: c.pair('output_padding', 0),
      dilation: c.pair('dilation', 1),
      groups: c.int('groups', 1),
    }),
  ),

  avg_pool2d: forward((c) => {
    c.expectParam('divisor_override', null);
    return ops.avgPool2d(c.input('x'), {
      kernelSize: c.pair('kernel_size'),
      stride: c.hasParam('stride') ? c.pair('stride') : undefined,
      padding: c.pair('padding', 0),
      ceilMode: c.bool('ceil_mode', false),
      countIncludePad: c.bool('count_include_pad', true),
    });
  }),
  adaptive_avg_pool2d: forward((c) => ops.adaptiveAvgPool2d(c.input('x'), c.pair('output_size'))),

  interpolate: forward((c) => {
    c.expectParam('antialias', false);
    const mode = c.str('mode');
    if (mode !== 'nearest' && mode !== 'bilinear' && mode !== 'bicubic') throw new Error(`interpolate: unsupported mode '${mode}'`);
    return ops.interpolate(c.input('x'), {
      size: c.hasParam('size') ? c.pair2('size') : undefined,
      scaleFactor: c.hasParam('scale_factor') ? c.num('scale_factor') : undefined,
      mode,
      alignCorners: mode === 'nearest' ? undefined : c.bool('align_corners', false),
    });
  }),

  adamw_optimizer: { kind: 'custom', run: adamw },
};
