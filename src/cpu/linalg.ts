/**
 * Matrix products with torch.matmul semantics.
 */
import { type NDArray, broadcastShapes, broadcastStrides, forEachIndex, ndSize, ndZeros } from './ndarray.js';
import { add } from './elementwise.js';
import { transpose } from './shape.js';

/**
 * C[n,m] = A[n,k] · B[k,m] on row-major sub-arrays at the given offsets. B is transposed first
 * so every output is one dot product of two contiguous rows, summed in ascending k order.
 */
function gemm(
  a: Float64Array,
  aOff: number,
  b: Float64Array,
  bOff: number,
  c: Float64Array,
  cOff: number,
  n: number,
  k: number,
  m: number,
): void {
  const bt = new Float64Array(k * m);
  for (let p = 0; p < k; p++) for (let j = 0; j < m; j++) bt[j * k + p] = b[bOff + p * m + j];
  for (let i = 0; i < n; i++) {
    const aRow = aOff + i * k;
    for (let j = 0; j < m; j++) {
      const bRow = j * k;
      let s = 0;
      for (let p = 0; p < k; p++) s += a[aRow + p] * bt[bRow + p];
      c[cOff + i * m + j] = s;
    }
  }
}

/**
 * torch.matmul:
 *   1-D · 1-D -> scalar (shape []); 2-D · 2-D -> matrix product;
 *   1-D first operand gets a 1 prepended (then removed); 1-D second operand gets a 1 appended
 *   (then removed); otherwise batch dims (all but the last two) broadcast.
 */
export function matmul(a: NDArray, b: NDArray): NDArray {
  if (a.shape.length === 0 || b.shape.length === 0) throw new Error('matmul: both arguments need rank >= 1');
  const aIs1d = a.shape.length === 1;
  const bIs1d = b.shape.length === 1;
  const aShape = aIs1d ? [1, a.shape[0]] : a.shape;
  const bShape = bIs1d ? [b.shape[0], 1] : b.shape;
  const n = aShape[aShape.length - 2];
  const k = aShape[aShape.length - 1];
  const k2 = bShape[bShape.length - 2];
  const m = bShape[bShape.length - 1];
  if (k !== k2) {
    throw new Error(`matmul: shapes [${a.shape.join(', ')}] and [${b.shape.join(', ')}] have mismatched inner dims`);
  }
  const aBatch = aShape.slice(0, -2);
  const bBatch = bShape.slice(0, -2);
  const batch = broadcastShapes(aBatch, bBatch);
  const out = ndZeros([...batch, n, m]);
  // Offsets of each matrix in a and b for each batch index: broadcast strides scaled by matrix size.
  const aStrides = broadcastStrides(aBatch, batch).map((s) => s * n * k);
  const bStrides = broadcastStrides(bBatch, batch).map((s) => s * k * m);
  forEachIndex(batch, [aStrides, bStrides], (bi, [ao, bo]) => {
    gemm(a.data, ao, b.data, bo, out.data, bi * n * m, n, k, m);
  });
  let shape = [...batch, n, m];
  if (aIs1d) shape = [...batch, m];
  if (bIs1d) shape = aIs1d ? [...batch] : [...batch, n];
  if (ndSize(shape) !== out.data.length) throw new Error('matmul: internal shape error');
  return { data: out.data, shape };
}

/** torch.nn.functional.linear: x · wᵀ + b, with w [out, in] and b [out]. */
export function linear(x: NDArray, w: NDArray, b?: NDArray): NDArray {
  if (w.shape.length !== 2) throw new Error(`linear: weight must be [out, in], got [${w.shape.join(', ')}]`);
  const y = matmul(x, transpose(w, 0, 1));
  return b ? add(y, b) : y;
}

/** Outer product of two 1-D arrays: [n] x [m] -> [n, m]. */
export function outer(u: NDArray, v: NDArray): NDArray {
  if (u.shape.length !== 1 || v.shape.length !== 1) throw new Error('outer: expects two 1-D arrays');
  return matmul({ data: u.data, shape: [u.shape[0], 1] }, { data: v.data, shape: [1, v.shape[0]] });
}
