/**
 * PSNR and SSIM of reconstructions, on the host in float64 (a few held-out images: cheap).
 * Images are [n, 3, H, W] in [0, 1]; reconstructions are clamped to [0, 1] first, as an image
 * file would be.
 *
 * SSIM is Wang et al. (2004) as usually reported: an 11×11 Gaussian window with σ = 1.5 over the
 * 'valid' positions, C1 = (0.01·L)², C2 = (0.03·L)² with L = 1, computed per channel and averaged
 * over channels, positions and images.
 */

const clamp01 = (v: number) => Math.min(1, Math.max(0, v));

/** Mean over images of 10·log10(1 / MSE); an exact copy counts as 100 dB. */
export function psnr(a: ArrayLike<number>, b: ArrayLike<number>, n: number): number {
  if (a.length !== b.length || a.length % n) throw new RangeError(`psnr: sizes ${a.length} and ${b.length} do not split into ${n} images`);
  const per = a.length / n;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    let se = 0;
    for (let j = i * per; j < (i + 1) * per; j++) se += (clamp01(a[j]) - clamp01(b[j])) ** 2;
    const mse = se / per;
    sum += mse === 0 ? 100 : -10 * Math.log10(mse);
  }
  return sum / n;
}

/** The normalised 1-D Gaussian of the separable SSIM window. */
export function gaussianWindow(size = 11, sigma = 1.5): Float64Array {
  const w = new Float64Array(size);
  const c = (size - 1) / 2;
  let s = 0;
  for (let i = 0; i < size; i++) s += w[i] = Math.exp(-((i - c) ** 2) / (2 * sigma * sigma));
  for (let i = 0; i < size; i++) w[i] /= s;
  return w;
}

/** 'valid' separable filtering of one H×W plane. */
function filterValid(x: Float64Array, H: number, W: number, w: Float64Array): Float64Array {
  const k = w.length;
  const oh = H - k + 1;
  const ow = W - k + 1;
  const rows = new Float64Array(H * ow);
  for (let y = 0; y < H; y++)
    for (let j = 0; j < ow; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += w[t] * x[y * W + j + t];
      rows[y * ow + j] = s;
    }
  const out = new Float64Array(oh * ow);
  for (let i = 0; i < oh; i++)
    for (let j = 0; j < ow; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += w[t] * rows[(i + t) * ow + j];
      out[i * ow + j] = s;
    }
  return out;
}

export function ssim(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  n: number,
  H: number,
  W: number,
  opts: { window?: number; sigma?: number } = {},
): number {
  const k = opts.window ?? 11;
  if (H < k || W < k) throw new RangeError(`ssim: images ${H}×${W} are smaller than the ${k}×${k} window`);
  if (a.length !== n * 3 * H * W || b.length !== a.length)
    throw new RangeError(`ssim: expected ${n}×3×${H}×${W} values, got ${a.length} and ${b.length}`);
  const w = gaussianWindow(k, opts.sigma ?? 1.5);
  const C1 = 0.01 ** 2;
  const C2 = 0.03 ** 2;
  const plane = H * W;
  let total = 0;
  let count = 0;
  for (let p = 0; p < n * 3; p++) {
    const x = new Float64Array(plane);
    const y = new Float64Array(plane);
    for (let i = 0; i < plane; i++) {
      x[i] = clamp01(a[p * plane + i]);
      y[i] = clamp01(b[p * plane + i]);
    }
    const xx = x.map((v) => v * v);
    const yy = y.map((v) => v * v);
    const xy = x.map((v, i) => v * y[i]);
    const [mx, my, sxx, syy, sxy] = [x, y, xx, yy, xy].map((q) => filterValid(q, H, W, w));
    for (let i = 0; i < mx.length; i++) {
      const vx = sxx[i] - mx[i] * mx[i];
      const vy = syy[i] - my[i] * my[i];
      const cxy = sxy[i] - mx[i] * my[i];
      total += ((2 * mx[i] * my[i] + C1) * (2 * cxy + C2)) / ((mx[i] ** 2 + my[i] ** 2 + C1) * (vx + vy + C2));
      count++;
    }
  }
  return total / count;
}
