/**
 * Attention and rotary position embedding, written as compositions of the other oracle ops so
 * that they are correct by construction.
 */
import { type NDArray, ndZeros } from './ndarray.js';
import { add, mul, mulScalar } from './elementwise.js';
import { matmul } from './linalg.js';
import { softmax } from './nn.js';
import { transpose } from './shape.js';

/**
 * softmax(q kᵀ · scale) v for q [..., Nq, D], k [..., Nk, D], v [..., Nk, Dv] (typically
 * [B, H, N, D]); leading dims broadcast like matmul. Default scale is 1/sqrt(D).
 */
export function scaledDotProductAttention(q: NDArray, k: NDArray, v: NDArray, scale?: number): NDArray {
  const d = q.shape[q.shape.length - 1];
  if (k.shape[k.shape.length - 1] !== d) {
    throw new Error(`attention: q [${q.shape.join(', ')}] and k [${k.shape.join(', ')}] head dims differ`);
  }
  if (k.shape[k.shape.length - 2] !== v.shape[v.shape.length - 2]) {
    throw new Error(`attention: k [${k.shape.join(', ')}] and v [${v.shape.join(', ')}] lengths differ`);
  }
  const s = scale ?? 1 / Math.sqrt(d);
  const scores = mulScalar(matmul(q, transpose(k, -2, -1)), s);
  return matmul(softmax(scores, -1), v);
}

/** The attention probabilities softmax(q kᵀ · scale), for checking intermediate results. */
export function attentionWeights(q: NDArray, k: NDArray, scale?: number): NDArray {
  const s = scale ?? 1 / Math.sqrt(q.shape[q.shape.length - 1]);
  return softmax(mulScalar(matmul(q, transpose(k, -2, -1)), s), -1);
}

/** Interleaved-pair rotation on the last axis: (x0, x1, x2, x3, ...) -> (-x1, x0, -x3, x2, ...). */
export function rotatePairs(x: NDArray): NDArray {
  const d = x.shape[x.shape.length - 1];
  if (d % 2 !== 0) throw new Error(`rotatePairs: last dim ${d} must be even`);
  const out = ndZeros(x.shape);
  for (let i = 0; i < x.data.length; i += 2) {
    out.data[i] = -x.data[i + 1];
    out.data[i + 1] = x.data[i];
  }
  return out;
}

/**
 * Rotary embedding with interleaved pairs: out = x * cos + rotatePairs(x) * sin, with x [..., N, D]
 * and cos/sin [N, D] broadcast over the leading dims. (cos/sin are expected to repeat each
 * frequency on both members of a pair; this function does not assume it.)
 */
export function rope(x: NDArray, cos: NDArray, sin: NDArray): NDArray {
  const [n, d] = x.shape.slice(-2);
  for (const [name, t] of [
    ['cos', cos],
    ['sin', sin],
  ] as const) {
    if (t.shape.length !== 2 || t.shape[0] !== n || t.shape[1] !== d) {
      throw new Error(`rope: ${name} must be [${n}, ${d}], got [${t.shape.join(', ')}]`);
    }
  }
  return add(mul(x, cos), mul(rotatePairs(x), sin));
}
