/** Softmax, cross entropy and normalisation layers: fused row kernels forward and backward. */
import { layerNormBackwardInto, layerNormInto, rmsNormBackwardInto, rmsNormInto } from '../../kernels/norm.js';
import {
  crossEntropyBackwardInto,
  crossEntropyInto,
  logSoftmaxBackwardInto,
  logSoftmaxInto,
  softmaxBackwardInto,
  softmaxInto,
} from '../../kernels/softmax.js';
import { asShape, tensor } from '../../tensor/creation.js';
import { cast } from './elementwise.js';
import { map } from './map.js';
import { fmt, normDim, sizeOf } from '../../core/shape.js';
import { scope } from '../../tensor/scope.js';
import { empty, Tensor } from '../../tensor/tensor.js';
import { record } from '../tape.js';
import { mean } from './reduce.js';
import { permute } from './shape.js';
import { assertFloat, assertTensor } from './util.js';

/** Runs a row op over `dim` by moving it last (a copy only when dim is not already last). */
function overLastDim(x: Tensor, dim: number, op: string, fn: (x2: Tensor) => Tensor): Tensor {
  const d = normDim(dim, x.rank, op);
  if (d === x.rank - 1 || x.rank === 0) return fn(x);
  const perm = x.shape.map((_, i) => i);
  perm.splice(d, 1);
  perm.push(d);
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  return scope(() => permute(fn(permute(x, perm)), inv));
}

function rows(x: Tensor): [number, number] {
  const C = x.rank === 0 ? 1 : x.shape[x.rank - 1];
  return [C === 0 ? 0 : x.size / C, C];
}

function softmaxLike(kind: 'softmax' | 'logSoftmax', x: Tensor, dim: number): Tensor {
  assertTensor(x, kind);
  assertFloat(x, kind);
  return overLastDim(x, dim, kind, (xm) =>
    scope(() => {
      const [R, C] = rows(xm);
      const y2 = empty([R, C], 'f32');
      (kind === 'softmax' ? softmaxInto : logSoftmaxInto)(asShape(xm, [R, C]), y2);
      const y = asShape(y2, xm.shape);
      return record(
        kind,
        y,
        [xm],
        (g, [ys]) => {
          const yv = asShape(ys, [R, C]);
          const gv = asShape(g, [R, C]);
          const dx = empty([R, C], 'f32');
          (kind === 'softmax' ? softmaxBackwardInto : logSoftmaxBackwardInto)(yv, gv, dx);
          return [asShape(dx, xm.shape)];
        },
        [y],
      );
    }),
  );
}

export const softmax = (x: Tensor, dim = -1) => softmaxLike('softmax', x, dim);
export const logSoftmax = (x: Tensor, dim = -1) => softmaxLike('logSoftmax', x, dim);

/**
 * Mean cross entropy of logits [N, C] against integer labels [N] (i32). Labels are checked on
 * the host only when given as an array; GPU labels outside [0, C) produce NaN.
 */
export function crossEntropy(logits: Tensor, labels: Tensor | ArrayLike<number>): Tensor {
  assertTensor(logits, 'crossEntropy', 'logits');
  assertFloat(logits, 'crossEntropy');
  if (logits.rank !== 2) throw new RangeError(`crossEntropy: logits must be [N, C], got ${fmt(logits.shape)}`);
  const [N, C] = logits.shape;
  // Converted labels, the contiguous logits and the per-row losses go with the scope.
  return scope(() => {
    let lab: Tensor;
    if (labels instanceof Tensor) {
      // tensor([0, 2, 1]) is f32 by default: accept integer-valued labels of any dtype.
      lab = labels.dtype === 'i32' ? labels : cast(labels, 'i32');
    } else {
      const arr = Int32Array.from(Array.from(labels as ArrayLike<number>));
      arr.forEach((v, i) => {
        if (!Number.isInteger(v) || v < 0 || v >= C) throw new RangeError(`crossEntropy: label ${v} at index ${i} is outside [0, ${C})`);
      });
      lab = tensorI32(arr);
    }
    if (lab.rank !== 1 || lab.shape[0] !== N)
      throw new RangeError(`crossEntropy: labels ${fmt(lab.shape)} must be [${N}] for logits ${fmt(logits.shape)}`);
    const lg = logits.isContiguous ? logits : asShape(logits, logits.shape);
    const perRow = empty([N], 'f32');
    crossEntropyInto(lg, lab, perRow);
    const loss = mean(perRow);
    return record(
      'crossEntropy',
      loss,
      [logits],
      (g, [ls, labs]) => {
        // g is a scalar on the GPU: scale inside the kernel would need a read-back, so apply it after.
        const d = empty([N, C], 'f32');
        const lsc = asShape(ls, [N, C]);
        crossEntropyBackwardInto(lsc, labs, 1 / N, d);
        return [scaleByScalarTensor(d, g)];
      },
      [logits, lab],
    );
  });
}

const tensorI32 = (a: Int32Array) => tensor(a, [a.length], { dtype: 'i32' });
const scaleByScalarTensor = (x: Tensor, s: Tensor) => map('mul', [x, s], 'in0 * in1', { dtype: x.dtype, shape: x.shape });

function normShape(x: Tensor, normalizedShape: readonly number[], op: string): [number, number] {
  const k = normalizedShape.length;
  if (k === 0 || k > x.rank || normalizedShape.some((d, i) => d !== x.shape[x.rank - k + i])) {
    throw new RangeError(`${op}: normalizedShape ${fmt(normalizedShape)} must match the trailing dims of input ${fmt(x.shape)}`);
  }
  const D = sizeOf(normalizedShape);
  return [D === 0 ? 0 : x.size / D, D];
}

function checkAffine(t: Tensor | null | undefined, D: number, shape: readonly number[], op: string, what: string): void {
  if (t && t.size !== D) throw new RangeError(`${op}: ${what} ${fmt(t.shape)} must have the normalized shape ${fmt(shape)}`);
}

export function layerNorm(x: Tensor, normalizedShape: readonly number[], weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor {
  assertTensor(x, 'layerNorm');
  assertFloat(x, 'layerNorm');
  const [R, D] = normShape(x, normalizedShape, 'layerNorm');
  checkAffine(weight, D, normalizedShape, 'layerNorm', 'weight');
  checkAffine(bias, D, normalizedShape, 'layerNorm', 'bias');
  // The [R, D] views and the row statistics (held by the node when it is recorded) go with the scope.
  return scope(() => {
    const x2 = asShape(x, [R, D]);
    const y2 = empty([R, D], 'f32');
    const mu = empty([R], 'f32');
    const rstd = empty([R], 'f32');
    layerNormInto(x2, weight ?? undefined, bias ?? undefined, eps, y2, mu, rstd);
    const y = asShape(y2, x.shape);
    return record(
      'layerNorm',
      y,
      [x, weight ?? null, bias ?? null],
      (g, [xs, m, r, w]) => {
        const xv = asShape(xs, [R, D]);
        const gv = asShape(g, [R, D]);
        const dx = empty([R, D], 'f32');
        const dw = weight?.requiresGrad ? empty([D], 'f32') : undefined;
        const db = bias?.requiresGrad ? empty([D], 'f32') : undefined;
        layerNormBackwardInto(xv, weight ? w : undefined, m, r, gv, dx, dw, db);
        return [x.requiresGrad ? asShape(dx, x.shape) : null, dw ? asShape(dw, weight!.shape) : null, db ? asShape(db, bias!.shape) : null];
      },
      weight ? [x, mu, rstd, weight] : [x, mu, rstd],
    );
  });
}

export function rmsNorm(x: Tensor, normalizedShape: readonly number[], weight?: Tensor | null, eps = 1e-6): Tensor {
  assertTensor(x, 'rmsNorm');
  assertFloat(x, 'rmsNorm');
  const [R, D] = normShape(x, normalizedShape, 'rmsNorm');
  checkAffine(weight, D, normalizedShape, 'rmsNorm', 'weight');
  return scope(() => {
    const x2 = asShape(x, [R, D]);
    const y2 = empty([R, D], 'f32');
    const rstd = empty([R], 'f32');
    rmsNormInto(x2, weight ?? undefined, eps, y2, rstd);
    const y = asShape(y2, x.shape);
    return record(
      'rmsNorm',
      y,
      [x, weight ?? null],
      (g, [xs, r, w]) => {
        const xv = asShape(xs, [R, D]);
        const gv = asShape(g, [R, D]);
        const dx = empty([R, D], 'f32');
        const dw = weight?.requiresGrad ? empty([D], 'f32') : undefined;
        rmsNormBackwardInto(xv, weight ? w : undefined, r, gv, dx, dw);
        return [x.requiresGrad ? asShape(dx, x.shape) : null, dw ? asShape(dw, weight!.shape) : null];
      },
      weight ? [x, rstd, weight] : [x, rstd],
    );
  });
}
