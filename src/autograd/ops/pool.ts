/**
 * Pooling with PyTorch's semantics (NCHW, no ceil mode): maxPool2d and avgPool2d forward and
 * backward by the kernels of kernels/pool.ts; batchNorm in inference form (running statistics)
 * as one fused elementwise pass over x with per-channel scale and shift.
 */
import { pool2dBackwardInto, pool2dInto, type PoolGeometry, type PoolKind } from '../../kernels/pool.js';
import { fmt } from '../../core/shape.js';
import { asShape } from '../../tensor/creation.js';
import { scope } from '../../tensor/scope.js';
import { empty, type Tensor } from '../../tensor/tensor.js';
import { record } from '../tape.js';
import { pair, type Pair } from './conv.js';
import { add, fused, mul, neg, sub, unary } from './elementwise.js';
import { reshape } from './shape.js';
import { assertFloat, assertTensor } from './util.js';

export interface Pool2dOptions {
  /** Default: the kernel size. */
  stride?: Pair;
  padding?: Pair;
}

export interface AvgPool2dOptions extends Pool2dOptions {
  /** Whether padded positions count in the divisor (default true, as PyTorch). */
  countIncludePad?: boolean;
}

function pool(kind: PoolKind, x: Tensor, kernelSize: Pair, opts: AvgPool2dOptions): Tensor {
  const op = `${kind}Pool2d`;
  assertTensor(x, op, 'input');
  assertFloat(x, op);
  if (x.rank !== 4) throw new RangeError(`${op}: input must be [N, C, H, W], got ${fmt(x.shape)}`);
  const kernel = pair(kernelSize, 1, op, 'kernelSize', 1);
  const stride = opts.stride === undefined ? kernel : pair(opts.stride, 1, op, 'stride', 1);
  const padding = pair(opts.padding, 0, op, 'padding', 0);
  if (padding[0] * 2 > kernel[0] || padding[1] * 2 > kernel[1]) {
    throw new RangeError(`${op}: padding ${padding.join('×')} must be at most half the kernel ${kernel.join('×')}`);
  }
  const [N, C, H, W] = x.shape;
  const OH = Math.floor((H + 2 * padding[0] - kernel[0]) / stride[0]) + 1;
  const OW = Math.floor((W + 2 * padding[1] - kernel[1]) / stride[1]) + 1;
  if (OH < 1 || OW < 1)
    throw new RangeError(`${op}: kernel ${kernel.join('×')} does not fit input ${H}×${W} padded by ${padding.join('×')}`);
  const g: PoolGeometry = { NC: N * C, H, W, OH, OW, kernel, stride, padding, countIncludePad: opts.countIncludePad ?? true };
  return scope(() => {
    const xc = x.isContiguous ? x : asShape(x, x.shape);
    const y = empty([N, C, OH, OW], 'f32');
    const idx = kind === 'max' ? empty([N, C, OH, OW], 'u32') : undefined;
    pool2dInto(kind, xc, y, idx, g);
    return record(
      op,
      y,
      [x],
      (dy, saved) => {
        const dyc = dy.isContiguous ? dy : asShape(dy, dy.shape);
        const dx = empty([N, C, H, W], 'f32');
        pool2dBackwardInto(kind, dyc, saved[0], dx, g);
        return [dx];
      },
      idx ? [idx] : [],
    );
  });
}

/** F.maxPool2d(x, kernelSize, { stride, padding }): PyTorch's max_pool2d (ceil_mode false, dilation 1). */
export const maxPool2d = (x: Tensor, kernelSize: Pair, opts: Pool2dOptions = {}) => pool('max', x, kernelSize, opts);

/**
 * F.avgPool2d(x, kernelSize, { stride, padding, countIncludePad }): PyTorch's avg_pool2d. TF's
 * 'same' average pool is countIncludePad false.
 */
export const avgPool2d = (x: Tensor, kernelSize: Pair, opts: AvgPool2dOptions = {}) => pool('avg', x, kernelSize, opts);

/**
 * Batch-norm in inference form over dim 1 (NC or NC…): y = (x − mean) / √(var + eps) · weight + bias
 * with the running statistics given. Differentiable in every argument; x is read once.
 */
export function batchNorm(
  x: Tensor,
  runningMean: Tensor,
  runningVar: Tensor,
  weight?: Tensor | null,
  bias?: Tensor | null,
  eps = 1e-5,
): Tensor {
  assertTensor(x, 'batchNorm', 'input');
  assertFloat(x, 'batchNorm');
  if (x.rank < 2) throw new RangeError(`batchNorm: input must be [N, C, …], got ${fmt(x.shape)}`);
  const C = x.shape[1];
  for (const [what, t] of [
    ['mean', runningMean],
    ['var', runningVar],
    ['weight', weight],
    ['bias', bias],
  ] as const) {
    if (!t) continue;
    assertTensor(t, 'batchNorm', what);
    if (t.rank !== 1 || t.shape[0] !== C)
      throw new RangeError(`batchNorm: ${what} must be [${C}] for input ${fmt(x.shape)}, got ${fmt(t.shape)}`);
  }
  if (!(eps >= 0)) throw new RangeError(`batchNorm: eps must be ≥ 0, got ${eps}`);
  return scope(() => {
    const inv = unary('rsqrt', add(runningVar, eps));
    const scale = weight ? mul(weight, inv) : inv;
    const shiftBase = mul(runningMean, scale);
    const shift = bias ? sub(bias, shiftBase) : neg(shiftBase);
    const bshape = [C, ...x.shape.slice(2).map(() => 1)];
    return fused('batchNorm', [x, reshape(scale, bshape), reshape(shift, bshape)], 'in0 * in1 + in2', ['in0 * in2', 'in0 * in1', 'in0']);
  });
}
