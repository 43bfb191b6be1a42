/**
 * The table of elementwise functions: one entry gives the WGSL expression and the matching
 * TypeScript reference. Inputs are `a`, `b`, `c`; scalar parameters are `s0`, `s1` (uniforms).
 * Gradient helpers (`*_grad`) are entries too, so each activation's backward is one fused kernel.
 */

export interface ElementwiseFn {
  arity: 1 | 2 | 3;
  wgsl: string;
  ref: (a: number, b: number, c: number, s0: number, s1: number) => number;
}

const SQRT1_2 = Math.SQRT1_2;
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/**
 * erf with |error| < 1.2e-7 (Numerical Recipes' erfc Chebyshev fit), identical in WGSL and TS so
 * that the CPU reference and the GPU kernel agree to float rounding.
 */
export const erfWgsl = /* wgsl */ `
fn erf_approx(x: f32) -> f32 {
  let z = abs(x);
  let t = 1.0 / (1.0 + 0.5 * z);
  let r = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
          t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
          t * (-0.82215223 + t * 0.17087277)))))))));
  return select(r - 1.0, 1.0 - r, x >= 0.0);
}
`;

export function erfRef(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
      t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
      t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? 1 - r : r - 1;
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

export const ELEMENTWISE_FNS = {
  // unary
  copy: { arity: 1, wgsl: 'a', ref: (a) => a },
  neg: { arity: 1, wgsl: '-a', ref: (a) => -a },
  exp: { arity: 1, wgsl: 'exp(a)', ref: (a) => Math.exp(a) },
  log: { arity: 1, wgsl: 'log(a)', ref: (a) => Math.log(a) },
  sqrt: { arity: 1, wgsl: 'sqrt(a)', ref: (a) => Math.sqrt(a) },
  rsqrt: { arity: 1, wgsl: 'inverseSqrt(a)', ref: (a) => 1 / Math.sqrt(a) },
  abs: { arity: 1, wgsl: 'abs(a)', ref: (a) => Math.abs(a) },
  sign: { arity: 1, wgsl: 'sign(a)', ref: (a) => Math.sign(a) },
  // NaN passes through, as in torch.relu (WGSL's max(NaN, 0) may give either operand).
  relu: { arity: 1, wgsl: 'select(a, 0.0, a < 0.0)', ref: (a) => (a < 0 ? 0 : a) },
  sigmoid: { arity: 1, wgsl: '1.0 / (1.0 + exp(-a))', ref: sigmoid },
  // NOTE: WGSL tanh of large |a| can produce NaN on some drivers; clamp the argument (tanh(±15) = ±1 in f32).
  tanh: { arity: 1, wgsl: 'tanh(clamp(a, -15.0, 15.0))', ref: (a) => Math.tanh(a) },
  gelu_erf: { arity: 1, wgsl: `0.5 * a * (1.0 + erf_approx(a * ${SQRT1_2}))`, ref: (a) => 0.5 * a * (1 + erfRef(a * SQRT1_2)) },
  gelu_tanh: {
    arity: 1,
    wgsl: `0.5 * a * (1.0 + tanh(clamp(${SQRT_2_OVER_PI} * (a + 0.044715 * a * a * a), -15.0, 15.0)))`,
    ref: (a) => 0.5 * a * (1 + Math.tanh(SQRT_2_OVER_PI * (a + 0.044715 * a * a * a))),
  },
  quick_gelu: { arity: 1, wgsl: 'a / (1.0 + exp(-1.702 * a))', ref: (a) => a * sigmoid(1.702 * a) },
  clamp: { arity: 1, wgsl: 'clamp(a, s0, s1)', ref: (a, _b, _c, s0, s1) => Math.min(Math.max(a, s0), s1) },
  pow_scalar: { arity: 1, wgsl: 'pow_signed(a, s0)', ref: (a, _b, _c, s0) => Math.pow(a, s0) },
  mul_scalar: { arity: 1, wgsl: 'a * s0', ref: (a, _b, _c, s0) => a * s0 },
  add_scalar: { arity: 1, wgsl: 'a + s0', ref: (a, _b, _c, s0) => a + s0 },
  // binary
  add: { arity: 2, wgsl: 'a + b', ref: (a, b) => a + b },
  sub: { arity: 2, wgsl: 'a - b', ref: (a, b) => a - b },
  mul: { arity: 2, wgsl: 'a * b', ref: (a, b) => a * b },
  div: { arity: 2, wgsl: 'a / b', ref: (a, b) => a / b },
  pow: { arity: 2, wgsl: 'pow_signed(a, b)', ref: (a, b) => Math.pow(a, b) },
  maximum: { arity: 2, wgsl: 'max(a, b)', ref: (a, b) => Math.max(a, b) },
  minimum: { arity: 2, wgsl: 'min(a, b)', ref: (a, b) => Math.min(a, b) },
  greater: { arity: 2, wgsl: 'select(0.0, 1.0, a > b)', ref: (a, b) => (a > b ? 1 : 0) },
  less: { arity: 2, wgsl: 'select(0.0, 1.0, a < b)', ref: (a, b) => (a < b ? 1 : 0) },
  equal: { arity: 2, wgsl: 'select(0.0, 1.0, a == b)', ref: (a, b) => (a === b ? 1 : 0) },
  // gradients: a = forward input x (or output y where named), b = dOut
  relu_grad: { arity: 2, wgsl: 'select(0.0, b, a > 0.0)', ref: (a, b) => (a > 0 ? b : 0) },
  sigmoid_grad_y: { arity: 2, wgsl: 'b * a * (1.0 - a)', ref: (a, b) => b * a * (1 - a) },
  tanh_grad_y: { arity: 2, wgsl: 'b * (1.0 - a * a)', ref: (a, b) => b * (1 - a * a) },
  gelu_erf_grad: {
    arity: 2,
    wgsl: `b * (0.5 * (1.0 + erf_approx(a * ${SQRT1_2})) + a * ${INV_SQRT_2PI} * exp(-0.5 * a * a))`,
    ref: (a, b) => b * (0.5 * (1 + erfRef(a * SQRT1_2)) + a * INV_SQRT_2PI * Math.exp(-0.5 * a * a)),
  },
  gelu_tanh_grad: {
    arity: 2,
    wgsl: `gelu_tanh_grad(a, b)`,
    ref: (a, b) => {
      const inner = SQRT_2_OVER_PI * (a + 0.044715 * a * a * a);
      const t = Math.tanh(inner);
      const dInner = SQRT_2_OVER_PI * (1 + 3 * 0.044715 * a * a);
      return b * (0.5 * (1 + t) + 0.5 * a * (1 - t * t) * dInner);
    },
  },
  quick_gelu_grad: {
    arity: 2,
    wgsl: 'quick_gelu_grad(a, b)',
    ref: (a, b) => {
      const s = sigmoid(1.702 * a);
      return b * (s + 1.702 * a * s * (1 - s));
    },
  },
  // ternary
  where: { arity: 3, wgsl: 'select(c, b, a != 0.0)', ref: (a, b, c) => (a !== 0 ? b : c) },
} satisfies Record<string, ElementwiseFn>;

export type ElementwiseOp = keyof typeof ELEMENTWISE_FNS;

/** Helper functions the expressions above may call; prepended to every elementwise kernel. */
export const elementwiseHelpersWgsl = /* wgsl */ `
${erfWgsl}
// pow with PyTorch's sign handling for negative bases and integral exponents.
fn pow_signed(x: f32, e: f32) -> f32 {
  if (x >= 0.0) { return pow(x, e); }
  // Negative base, fractional exponent: NaN as in PyTorch. A var keeps the NaN out of const-eval.
  var nan_bits = 0x7fc00000u;
  if (fract(e) != 0.0) { return bitcast<f32>(nan_bits); }
  let m = pow(-x, e);
  return select(m, -m, fract(e * 0.5) != 0.0);
}
fn gelu_tanh_grad(x: f32, g: f32) -> f32 {
  let inner = clamp(${SQRT_2_OVER_PI} * (x + 0.044715 * x * x * x), -15.0, 15.0);
  let t = tanh(inner);
  let d_inner = ${SQRT_2_OVER_PI} * (1.0 + 3.0 * 0.044715 * x * x);
  return g * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * d_inner);
}
fn quick_gelu_grad(x: f32, g: f32) -> f32 {
  let s = 1.0 / (1.0 + exp(-1.702 * x));
  return g * (s + 1.702 * x * s * (1.0 - s));
}
`;

/**
 * WGSL `fn activate(a: f32) -> f32`: one unary op of the table applied to a value a kernel is
 * about to store (the matmul and conv kernels' fused activations), with the erf helper where it
 * needs it.
 */
export function activationFnWgsl(name: ElementwiseOp): string {
  const fn = ELEMENTWISE_FNS[name];
  if (fn.arity !== 1) throw new Error(`activationFnWgsl: '${name}' is not a unary op`);
  return `${name === 'gelu_erf' ? erfWgsl : ''}
fn activate(a: f32) -> f32 { return ${fn.wgsl}; }`;
}

/** The host side of activationFnWgsl (identity without a name), for CPU references. */
export function activationRef(name: ElementwiseOp | undefined): (x: number) => number {
  if (!name) return (x) => x;
  const fn = ELEMENTWISE_FNS[name];
  if (fn.arity !== 1) throw new Error(`activationRef: '${name}' is not a unary op`);
  return fn.ref as (x: number) => number;
}
