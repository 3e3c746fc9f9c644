/**
 * Float64 attention written as plain loops (forward o and lse; with dO the analytic gradients
 * dV = Pᵀ dO, dP = dO Vᵀ, dS = P∘(dP − rowsum(dP∘P)), dQ = scale·dS K, dK = scale·dSᵀ Q), and
 * q/k/v as strided views of a fused projection: shared by the attention kernel tests.
 */
import { tensor } from '../../src/tensor/creation.js';
import { type Tensor, viewOf } from '../../src/tensor/tensor.js';

export interface Ref {
  o: Float64Array;
  lse: Float64Array;
  dq?: Float64Array;
  dk?: Float64Array;
  dv?: Float64Array;
}

/** Float64 attention over contiguous [BH, N, D] arrays; with `g` (= dO) also the analytic gradients. */
export function reference(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  bh: number,
  nq: number,
  nk: number,
  d: number,
  scale: number,
  g?: ArrayLike<number>,
): Ref {
  const o = new Float64Array(bh * nq * d);
  const lse = new Float64Array(bh * nq);
  const dq = new Float64Array(bh * nq * d);
  const dk = new Float64Array(bh * nk * d);
  const dv = new Float64Array(bh * nk * d);
  const P = new Float64Array(nq * nk);
  const dS = new Float64Array(nq * nk);
  for (let s = 0; s < bh; s++) {
    const Q = s * nq * d;
    const K = s * nk * d;
    for (let i = 0; i < nq; i++) {
      let m = -Infinity;
      for (let j = 0; j < nk; j++) {
        let dot = 0;
        for (let c = 0; c < d; c++) dot += q[Q + i * d + c] * k[K + j * d + c];
        P[i * nk + j] = dot * scale;
        m = Math.max(m, dot * scale);
      }
      let z = 0;
      for (let j = 0; j < nk; j++) z += Math.exp(P[i * nk + j] - m);
      lse[s * nq + i] = m + Math.log(z);
      for (let j = 0; j < nk; j++) P[i * nk + j] = Math.exp(P[i * nk + j] - m) / z;
      for (let c = 0; c < d; c++) {
        let acc = 0;
        for (let j = 0; j < nk; j++) acc += P[i * nk + j] * v[K + j * d + c];
        o[Q + i * d + c] = acc;
      }
    }
    if (!g) continue;
    for (let i = 0; i < nq; i++) {
      let rowsum = 0;
      for (let j = 0; j < nk; j++) {
        let dp = 0;
        for (let c = 0; c < d; c++) dp += g[Q + i * d + c] * v[K + j * d + c];
        dS[i * nk + j] = dp;
        rowsum += dp * P[i * nk + j];
      }
      for (let j = 0; j < nk; j++) dS[i * nk + j] = P[i * nk + j] * (dS[i * nk + j] - rowsum);
    }
    for (let i = 0; i < nq; i++)
      for (let j = 0; j < nk; j++) {
        const p = P[i * nk + j];
        const ds = dS[i * nk + j] * scale;
        for (let c = 0; c < d; c++) {
          dv[K + j * d + c] += p * g[Q + i * d + c];
          dq[Q + i * d + c] += ds * k[K + j * d + c];
          dk[K + j * d + c] += ds * q[Q + i * d + c];
        }
      }
  }
  return g ? { o, lse, dq, dk, dv } : { o, lse };
}

/** q, k, v as [B,H,N,D] views into one fused [B, N, 3, H, D] buffer (as a qkv projection makes it). */
export function fusedQKV(data: Float32Array, b: number, n: number, h: number, d: number): { qkv: Tensor; views: Tensor[] } {
  const qkv = tensor(data, [b, n, 3, h, d]);
  const strides = [n * 3 * h * d, d, 3 * h * d, 1];
  const views = [0, 1, 2].map((w) => viewOf(qkv, [b, h, n, d], strides, w * h * d));
  return { qkv, views };
}

/** [B,N,3,H,D] data → the contiguous [B,H,N,D] array of slot w. */
export function unfuse(data: Float32Array, b: number, n: number, h: number, d: number, w: number): Float64Array {
  const out = new Float64Array(b * h * n * d);
  for (let bi = 0; bi < b; bi++)
    for (let hi = 0; hi < h; hi++)
      for (let i = 0; i < n; i++)
        for (let c = 0; c < d; c++) out[((bi * h + hi) * n + i) * d + c] = data[(((bi * n + i) * 3 + w) * h + hi) * d + c];
  return out;
}
