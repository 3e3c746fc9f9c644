/**
 * Float64 references for convolution, pooling and inference batch-norm (NCHW), written as the
 * definitions' direct loops: no tiling, no reuse, so they are easy to check by eye.
 */
import type { NDArray } from './ndarray.js';

export interface Conv2dRefOptions {
  stride?: [number, number];
  padding?: [number, number];
  dilation?: [number, number];
  groups?: number;
}

/** y[n, co, oh, ow] = Σ_{ci ∈ group, kh, kw} x[n, ci, oh·s − p + kh·d, ow·s − p + kw·d] · w[co, ci′, kh, kw] + b[co]. */
export function conv2dRef(x: NDArray, w: NDArray, b: NDArray | null, o: Conv2dRefOptions = {}): NDArray {
  const [N, C, H, W] = x.shape;
  const [Co, Cig, KH, KW] = w.shape;
  const [sh, sw] = o.stride ?? [1, 1];
  const [ph, pw] = o.padding ?? [0, 0];
  const [dh, dw] = o.dilation ?? [1, 1];
  const G = o.groups ?? 1;
  if (Cig * G !== C || Co % G) throw new Error('conv2dRef: channels do not match groups');
  const Cog = Co / G;
  const OH = Math.floor((H + 2 * ph - dh * (KH - 1) - 1) / sh) + 1;
  const OW = Math.floor((W + 2 * pw - dw * (KW - 1) - 1) / sw) + 1;
  const y = new Float64Array(N * Co * OH * OW);
  for (let n = 0; n < N; n++)
    for (let co = 0; co < Co; co++) {
      const g = Math.floor(co / Cog);
      for (let oh = 0; oh < OH; oh++)
        for (let ow = 0; ow < OW; ow++) {
          let s = b ? b.data[co] : 0;
          for (let ci = 0; ci < Cig; ci++)
            for (let kh = 0; kh < KH; kh++) {
              const ih = oh * sh - ph + kh * dh;
              if (ih < 0 || ih >= H) continue;
              for (let kw = 0; kw < KW; kw++) {
                const iw = ow * sw - pw + kw * dw;
                if (iw < 0 || iw >= W) continue;
                s += x.data[((n * C + g * Cig + ci) * H + ih) * W + iw] * w.data[((co * Cig + ci) * KH + kh) * KW + kw];
              }
            }
          y[((n * Co + co) * OH + oh) * OW + ow] = s;
        }
    }
  return { data: y, shape: [N, Co, OH, OW] };
}

export interface Pool2dRefOptions {
  stride?: [number, number];
  padding?: [number, number];
  /** Average pool only: whether padded positions count in the divisor (PyTorch's default true). */
  countIncludePad?: boolean;
}

/** Max or average over each window; padding is −∞ for max and excluded or counted as 0 for average. */
export function pool2dRef(kind: 'max' | 'avg', x: NDArray, k: [number, number], o: Pool2dRefOptions = {}): NDArray {
  const [N, C, H, W] = x.shape;
  const [kh, kw] = k;
  const [sh, sw] = o.stride ?? k;
  const [ph, pw] = o.padding ?? [0, 0];
  const OH = Math.floor((H + 2 * ph - kh) / sh) + 1;
  const OW = Math.floor((W + 2 * pw - kw) / sw) + 1;
  const y = new Float64Array(N * C * OH * OW);
  for (let nc = 0; nc < N * C; nc++)
    for (let oh = 0; oh < OH; oh++)
      for (let ow = 0; ow < OW; ow++) {
        let m = -Infinity;
        let s = 0;
        let count = 0;
        for (let i = 0; i < kh; i++)
          for (let j = 0; j < kw; j++) {
            const ih = oh * sh - ph + i;
            const iw = ow * sw - pw + j;
            if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
            const v = x.data[(nc * H + ih) * W + iw];
            m = Math.max(m, v);
            s += v;
            count++;
          }
        // PyTorch's divisor with padding included: the window clipped to the padded input.
        const hEnd = Math.min(oh * sh - ph + kh, H + ph);
        const wEnd = Math.min(ow * sw - pw + kw, W + pw);
        const padded = (hEnd - (oh * sh - ph)) * (wEnd - (ow * sw - pw));
        y[(nc * OH + oh) * OW + ow] = kind === 'max' ? m : s / ((o.countIncludePad ?? true) ? padded : count);
      }
  return { data: y, shape: [N, C, OH, OW] };
}

/** y = (x − mean[c]) / √(var[c] + eps) · weight[c] + bias[c] over NCHW (or NC). */
export function batchNormRef(
  x: NDArray,
  mean: NDArray,
  variance: NDArray,
  weight: NDArray | null,
  bias: NDArray | null,
  eps: number,
): NDArray {
  const C = x.shape[1];
  const inner = x.shape.slice(2).reduce((a, b) => a * b, 1);
  const y = new Float64Array(x.data.length);
  for (let i = 0; i < y.length; i++) {
    const c = Math.floor(i / inner) % C;
    y[i] = ((x.data[i] - mean.data[c]) / Math.sqrt(variance.data[c] + eps)) * (weight ? weight.data[c] : 1) + (bias ? bias.data[c] : 0);
  }
  return { data: y, shape: [...x.shape] };
}
