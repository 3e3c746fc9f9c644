/**
 * The table of pointwise (unary) ops. Everything else derives from it: the typed op names
 * (`UnaryOp`), the differentiable op (`unary(name, x)` in src/autograd/ops/elementwise.ts), the
 * Tensor methods (`x.exp()`, src/tensor/tensor.ts) and `F` (src/nn/functional.ts). Adding a
 * pointwise op = one entry here + its float64 oracle in src/cpu/pointwise.ts (a test runs every
 * entry against its oracle, forward and gradient).
 *
 * `fwd` is a WGSL expression of `in0` (the input, in f32); `grad` an expression of `in0` (the
 * output gradient) and `in1` (the saved input, or the saved output when `usesOutput`). Helper
 * functions (erf_f32, gelu_erf, sigmoid_f32, silu_f32, tanh_safe, …) come from the WGSL math
 * library of src/kernels.
 */
export interface PointwiseDef {
  readonly fwd: string;
  readonly grad: string;
  readonly usesOutput?: boolean;
  /** Becomes a Tensor method of the same name (`x.exp()`). */
  readonly method?: boolean;
  /** Becomes a function of `F` of the same name (`F.silu(x)`). */
  readonly functional?: boolean;
}

export const UNARY_OPS = {
  neg: { fwd: '-in0', grad: '-in0', method: true },
  exp: { fwd: 'exp(in0)', grad: 'in0 * in1', usesOutput: true, method: true },
  log: { fwd: 'log(in0)', grad: 'in0 / in1', method: true },
  sqrt: { fwd: 'sqrt(in0)', grad: 'in0 * 0.5 / in1', usesOutput: true, method: true },
  rsqrt: { fwd: 'inverseSqrt(in0)', grad: 'in0 * -0.5 * in1 * in1 * in1', usesOutput: true, method: true },
  abs: { fwd: 'abs(in0)', grad: 'in0 * sign(in1)', method: true },
  sin: { fwd: 'sin(in0)', grad: 'in0 * cos(in1)', method: true },
  cos: { fwd: 'cos(in0)', grad: '-in0 * sin(in1)', method: true },
  tanh: { fwd: 'tanh_safe(in0)', grad: 'in0 * (1.0 - in1 * in1)', usesOutput: true, method: true, functional: true },
  sigmoid: { fwd: 'sigmoid_f32(in0)', grad: 'in0 * in1 * (1.0 - in1)', usesOutput: true, method: true, functional: true },
  relu: { fwd: 'relu_f32(in0)', grad: 'select(0.0, in0, in1 > 0.0)', method: true, functional: true },
  silu: { fwd: 'silu_f32(in0)', grad: 'in0 * silu_grad(in1)', method: true, functional: true },
  // gelu / gelu_tanh reach users as x.gelu({ approximate }) and F.gelu(x, { approximate }).
  gelu: { fwd: 'gelu_erf(in0)', grad: 'in0 * gelu_erf_grad(in1)' },
  gelu_tanh: { fwd: 'gelu_tanh(in0)', grad: 'in0 * gelu_tanh_grad(in1)' },
} as const satisfies Record<string, PointwiseDef>;

export type UnaryOp = keyof typeof UNARY_OPS;

type Flagged<Flag extends 'method' | 'functional'> = {
  [K in UnaryOp]: (typeof UNARY_OPS)[K] extends { readonly [P in Flag]: true } ? K : never;
}[UnaryOp];

/** Unary ops that are Tensor methods. */
export type UnaryMethod = Flagged<'method'>;
/** Unary ops that are functions of `F`. */
export type UnaryFunctional = Flagged<'functional'>;

export const UNARY_NAMES = Object.keys(UNARY_OPS) as UnaryOp[];
export const UNARY_METHODS = UNARY_NAMES.filter((k): k is UnaryMethod => (UNARY_OPS[k] as PointwiseDef).method === true);
export const UNARY_FUNCTIONALS = UNARY_NAMES.filter((k): k is UnaryFunctional => (UNARY_OPS[k] as PointwiseDef).functional === true);

export function isUnaryOp(name: unknown): name is UnaryOp {
  return typeof name === 'string' && Object.hasOwn(UNARY_OPS, name);
}
