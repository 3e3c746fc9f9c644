/**
 * matmul / linear. Backward reuses the forward kernel through strided (transposed) views:
 * dA = dC·Bᵀ and dB = Aᵀ·dC, with no materialised transposes.
 */
import { matmulInto, type MatmulOptions } from '../../kernels/matmul.js';
import type { View } from '../../kernels/view.js';
import { asShape } from '../../tensor/creation.js';
import { scope } from '../../tensor/scope.js';
import { broadcastShapes, fmt } from '../../core/shape.js';
import { empty, type Tensor } from '../../tensor/tensor.js';
import { isGradEnabled, record } from '../tape.js';
import { unary } from './elementwise.js';
import { sum, sumToShape } from './reduce.js';
import { assertTensor } from './util.js';

/** A transposed view of the last two dims, as kernel input only (no Tensor object). */
function tview(t: View): View {
  const r = t.shape.length;
  const shape = [...t.shape];
  const strides = [...t.strides];
  [shape[r - 2], shape[r - 1]] = [shape[r - 1], shape[r - 2]];
  [strides[r - 2], strides[r - 1]] = [strides[r - 1], strides[r - 2]];
  return { buffer: t.buffer, dtype: t.dtype, shape, strides, offset: t.offset };
}

function mm(a: View, b: View, outShape: number[], opts?: MatmulOptions): Tensor {
  const dtype = a.dtype === 'f16' && b.dtype === 'f16' ? 'f16' : 'f32';
  const out = empty(outShape, dtype);
  matmulInto(a, b, out, opts);
  return out;
}

/** torch.matmul semantics for rank ≥ 1 operands with broadcast batch dims. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  assertTensor(a, 'matmul', 'first operand');
  assertTensor(b, 'matmul', 'second operand');
  if (a.rank === 0 || b.rank === 0) throw new RangeError(`matmul: operands must have rank ≥ 1, got ${fmt(a.shape)} and ${fmt(b.shape)}`);
  // Temporaries (rank-1 operands seen as matrices) go with the scope.
  return scope(() => {
    const a2 = a.rank === 1 ? asShape(a, [1, a.shape[0]]) : a;
    const b2 = b.rank === 1 ? asShape(b, [b.shape[0], 1]) : b;
    const M = a2.shape[a2.rank - 2];
    const K = a2.shape[a2.rank - 1];
    const K2 = b2.shape[b2.rank - 2];
    const N = b2.shape[b2.rank - 1];
    if (K !== K2) throw new RangeError(`matmul: shapes ${fmt(a.shape)} and ${fmt(b.shape)} cannot be multiplied (${K} ≠ ${K2})`);
    const batch = broadcastShapes(a2.shape.slice(0, -2), b2.shape.slice(0, -2), 'matmul');
    const full = mm(a2, b2, [...batch, M, N]);
    const finalShape = [...batch, ...(a.rank > 1 ? [M] : []), ...(b.rank > 1 ? [N] : [])];
    const y = a.rank === 1 || b.rank === 1 ? asShape(full, finalShape) : full;
    return record(
      'matmul',
      y,
      [a, b],
      (g, [sa, sb]) => {
        const g2 = asShape(g, [...batch, M, N]);
        const sa2 = sa.rank === 1 ? asShape(sa, [1, K]) : sa;
        const sb2 = sb.rank === 1 ? asShape(sb, [K, 1]) : sb;
        const da = a.requiresGrad ? sumToShape(mm(g2, tview(sb2), [...batch, M, K]), a2.shape) : null;
        const db = b.requiresGrad ? sumToShape(mm(tview(sa2), g2, [...batch, K, N]), b2.shape) : null;
        return [da && asShape(da, a.shape), db && asShape(db, b.shape)];
      },
      [a, b],
    );
  });
}

export interface LinearOptions {
  /** Fused epilogue; used as-is when no gradient is recorded, else applied as a separate op. */
  activation?: 'none' | 'gelu' | 'gelu_tanh' | 'silu' | 'relu';
  /** Added to the output (fused, differentiable). Same shape as the output. */
  residual?: Tensor;
}

/** y = x·wᵀ + b, w: [out, in] as in PyTorch. */
export function linear(x: Tensor, w: Tensor, b?: Tensor | null, opts: LinearOptions = {}): Tensor {
  assertTensor(x, 'linear', 'input');
  assertTensor(w, 'linear', 'weight');
  if (w.rank !== 2) throw new RangeError(`linear: weight must be [out, in], got ${fmt(w.shape)}`);
  const [outF, inF] = w.shape;
  if (x.rank < 1 || x.shape[x.rank - 1] !== inF)
    throw new RangeError(`linear: input ${fmt(x.shape)} does not end in ${inF} (weight ${fmt(w.shape)})`);
  if (b && (b.rank !== 1 || b.shape[0] !== outF)) throw new RangeError(`linear: bias must be [${outF}], got ${fmt(b.shape)}`);
  const lead = x.shape.slice(0, -1);
  const outShape = [...lead, outF];
  if (opts.residual && opts.residual.shape.join() !== outShape.join()) {
    throw new RangeError(`linear: residual ${fmt(opts.residual.shape)} must match the output ${fmt(outShape)}`);
  }
  const M = lead.reduce((p, d) => p * d, 1);
  const needGrad = isGradEnabled() && [x, w, b, opts.residual].some((t) => t?.requiresGrad);
  const act = opts.activation ?? 'none';
  const fuseAct = !needGrad && act !== 'none';
  if (fuseAct && opts.residual) throw new Error('linear: a fused activation with a residual is not supported');
  // The [M, ·] views and, with a separate activation, the pre-activation go with the scope.
  return scope(() => {
    const x2 = asShape(x, [M, inF]);
    const r2 = opts.residual ? asShape(opts.residual, [M, outF]) : undefined;
    const y2 = mm(x2, tview(w), [M, outF], {
      bias: b ?? undefined,
      residual: fuseAct ? undefined : r2,
      activation: fuseAct ? act : 'none',
    });
    const out = record(
      'linear',
      asShape(y2, outShape),
      [x, w, b ?? null, opts.residual ?? null],
      (g, [xs, ws]) => {
        const g2 = asShape(g, [M, outF]);
        const xs2 = asShape(xs, [M, inF]);
        const dx = x.requiresGrad ? asShape(mm(g2, ws, [M, inF]), x.shape) : null;
        const dw = w.requiresGrad ? mm(tview(g2), xs2, [outF, inF]) : null;
        const db = b?.requiresGrad ? sum(g2, 0) : null;
        const dr = opts.residual?.requiresGrad ? asShape(g, outShape) : null;
        return [dx, dw, db, dr];
      },
      [x, w],
    );
    return !fuseAct && act !== 'none' ? unary(act, out) : out;
  });
}
