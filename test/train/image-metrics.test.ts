/**
 * PSNR and SSIM (src/train/image-metrics.ts) against a direct float64 evaluation written here
 * independently: SSIM as the mean over every 11×11 window position of the Wang et al. formula,
 * with the 2-D Gaussian weights built as a full 11×11 table (not separably) and normalised, and
 * PSNR from the per-image MSE. Plus closed forms: SSIM(x, x) = 1, PSNR of a constant offset δ
 * is −10·log10(δ²).
 */
import { describe, expect, it } from 'vitest';
import { psnr, ssim } from '../../src/train/image-metrics.js';
import { randomData } from '../helpers/random.js';

function referenceSsim(a: Float64Array, b: Float64Array, n: number, H: number, W: number): number {
  const k = 11;
  const sigma = 1.5;
  const w: number[][] = [];
  let total = 0;
  for (let i = 0; i < k; i++) {
    w.push([]);
    for (let j = 0; j < k; j++) {
      const v = Math.exp(-((i - 5) ** 2 + (j - 5) ** 2) / (2 * sigma * sigma));
      w[i].push(v);
      total += v;
    }
  }
  const C1 = 1e-4;
  const C2 = 9e-4;
  let sum = 0;
  let count = 0;
  for (let p = 0; p < n * 3; p++) {
    const at = (arr: Float64Array, y: number, x: number) => Math.min(1, Math.max(0, arr[p * H * W + y * W + x]));
    for (let y0 = 0; y0 + k <= H; y0++)
      for (let x0 = 0; x0 + k <= W; x0++) {
        let mx = 0,
          my = 0,
          sxx = 0,
          syy = 0,
          sxy = 0;
        for (let i = 0; i < k; i++)
          for (let j = 0; j < k; j++) {
            const g = w[i][j] / total;
            const u = at(a, y0 + i, x0 + j);
            const v = at(b, y0 + i, x0 + j);
            mx += g * u;
            my += g * v;
            sxx += g * u * u;
            syy += g * v * v;
            sxy += g * u * v;
          }
        const vx = sxx - mx * mx;
        const vy = syy - my * my;
        const cxy = sxy - mx * my;
        sum += ((2 * mx * my + C1) * (2 * cxy + C2)) / ((mx * mx + my * my + C1) * (vx + vy + C2));
        count++;
      }
  }
  return sum / count;
}

describe('PSNR / SSIM', () => {
  const [n, H, W] = [2, 16, 19];
  const a = randomData(n * 3 * H * W, 1, 0, 1);
  // A noisy, partly out-of-range copy (clamping is part of the definition).
  const noise = randomData(a.length, 2, -0.2, 0.2);
  const b = a.map((v, i) => v + noise[i] + (i % 97 === 0 ? 0.9 : 0));

  it('SSIM matches the direct float64 window sum', () => {
    const got = ssim(b, a, n, H, W);
    const want = referenceSsim(b, a, n, H, W);
    expect(Math.abs(got - want)).toBeLessThan(1e-12);
    expect(want).toBeGreaterThan(0.1);
    expect(want).toBeLessThan(0.99);
  });

  it('SSIM of an image with itself is 1; smaller than the window is an error', () => {
    expect(ssim(a, a, n, H, W)).toBeCloseTo(1, 12);
    expect(() => ssim(a.subarray(0, 3 * 10 * 10), a.subarray(0, 3 * 10 * 10), 1, 10, 10)).toThrow(/window/);
  });

  it('PSNR is the mean over images of −10·log10(MSE), clamped to [0, 1]', () => {
    let want = 0;
    const per = 3 * H * W;
    for (let i = 0; i < n; i++) {
      let se = 0;
      for (let j = i * per; j < (i + 1) * per; j++) se += (Math.min(1, Math.max(0, b[j])) - a[j]) ** 2;
      want += -10 * Math.log10(se / per);
    }
    expect(psnr(b, a, n)).toBeCloseTo(want / n, 10);
    const grey = new Float64Array(per).fill(0.5);
    const off = grey.map((v) => v + 0.1);
    expect(psnr(off, grey, 1)).toBeCloseTo(20, 10);
  });
});
