/**
 * ADM centre crop (BOX halving while ≥ 2×, bicubic to the short side, centre crop) against a
 * float64 reference written independently: dense resampling matrices (every input pixel in PIL's
 * tap window weighed by the kernel at its distance), rounded half up after each pass as PIL does.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { makeImageOps } from '../../src/io/formats/image-ops.js';

const ops = makeImageOps();

function kernel(filter: 'box' | 'bicubic', x: number): number {
  if (filter === 'box') return x > -0.5 && x <= 0.5 ? 1 : 0; // half-open as PIL's
  const a = -0.5;
  const t = Math.abs(x);
  if (t < 1) return (a + 2) * t ** 3 - (a + 3) * t ** 2 + 1;
  if (t < 2) return a * t ** 3 - 5 * a * t ** 2 + 8 * a * t - 4 * a;
  return 0;
}

/** [outSize][inSize] weights, rows normalised. */
function matrix(inSize: number, outSize: number, filter: 'box' | 'bicubic'): number[][] {
  const scale = inSize / outSize;
  const fs = Math.max(1, scale);
  return Array.from({ length: outSize }, (_, o) => {
    const centre = (o + 0.5) * scale;
    // PIL's tap window (the kernel is zero outside it; kept to mirror PIL's rule literally).
    const support = (filter === 'box' ? 0.5 : 2) * fs;
    const lo = Math.trunc(centre - support + 0.5);
    const hi = Math.trunc(centre + support + 0.5);
    const row = Array.from({ length: inSize }, (_, i) => (i >= lo && i < hi ? kernel(filter, (i + 0.5 - centre) / fs) : 0));
    const sum = row.reduce((s, v) => s + v, 0);
    return row.map((v) => v / sum);
  });
}

const round8 = (v: number) => Math.min(255, Math.max(0, Math.floor(v + 0.5)));

/** Reference resize of a grey image given as rows. */
function refResize(img: number[][], outW: number, outH: number, filter: 'box' | 'bicubic'): number[][] {
  const h = img.length;
  const w = img[0].length;
  let cur = img;
  if (outW !== w) {
    const m = matrix(w, outW, filter);
    cur = cur.map((row) => m.map((mr) => round8(mr.reduce((s, wt, i) => s + wt * row[i], 0))));
  }
  if (outH !== h) {
    const m = matrix(h, outH, filter);
    cur = m.map((mr) => cur[0].map((_, x) => round8(mr.reduce((s, wt, i) => s + wt * cur[i][x], 0))));
  }
  return cur;
}

function refCentreCrop(img: number[][], size: number): number[][] {
  let cur = img;
  while (Math.min(cur.length, cur[0].length) >= 2 * size)
    cur = refResize(cur, Math.floor(cur[0].length / 2), Math.floor(cur.length / 2), 'box');
  const scale = size / Math.min(cur.length, cur[0].length);
  const nw = Math.round(cur[0].length * scale);
  const nh = Math.round(cur.length * scale);
  cur = refResize(cur, nw, nh, 'bicubic');
  const top = Math.floor((nh - size) / 2);
  const left = Math.floor((nw - size) / 2);
  return cur.slice(top, top + size).map((r) => r.slice(left, left + size));
}

function greyImage(w: number, h: number, seed: number): number[][] {
  let s = seed;
  return Array.from({ length: h }, () =>
    Array.from({ length: w }, () => {
      s = (s * 1103515245 + 12345) >>> 0;
      return (s >>> 16) & 255;
    }),
  );
}

describe('ADM centre crop', () => {
  it.each([
    [7, 5, 3], // no halving, bicubic down, crop in x
    [13, 9, 4], // one BOX halving of odd sizes (13×9 → 6×4), no bicubic (scale 1), crop in x
    [20, 12, 5], // halving to 10×6, bicubic down to 8×5, crop
    [9, 14, 4], // portrait: halving to 4×7, scale 1, crop in y
    [5, 6, 11], // bicubic upsampling
    [40, 33, 8], // two halvings
  ])('%i×%i → %i matches the float64 reference (grey → three equal planes)', (w, h, size) => {
    const img = greyImage(w, h, w * 31 + h);
    const want = refCentreCrop(img, size).flat();
    const got = ops.centreCrop(Uint8Array.from(img.flat()), w, h, 1, size);
    expect(got.length).toBe(3 * size * size);
    for (let c = 0; c < 3; c++) expect(Array.from(got.subarray(c * size * size, (c + 1) * size * size))).toEqual(want);
  });

  it('RGB channels are cropped independently into CHW planes', () => {
    const [w, h, size] = [11, 8, 3];
    const planes = [0, 1, 2].map((c) => greyImage(w, h, 7 + c));
    const hwc = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) hwc[(y * w + x) * 3 + c] = planes[c][y][x];
    const got = ops.centreCrop(hwc, w, h, 3, size);
    for (let c = 0; c < 3; c++)
      expect(Array.from(got.subarray(c * size * size, (c + 1) * size * size))).toEqual(refCentreCrop(planes[c], size).flat());
  });

  it('BOX halving of a 4×4 image to 2 is the 2×2 block mean, rounded half up per pass (by hand)', () => {
    // Blocks: [10 20; 30 40] → rows 15, 35 → 25. [0 1; 0 0] → rows 0.5→1, 0 → 0.5→1.
    // [255 254; 0 1] → 254.5→255, 0.5→1 → 128. [7 7; 7 7] → 7.
    const img = [
      [10, 20, 0, 1],
      [30, 40, 0, 0],
      [255, 254, 7, 7],
      [0, 1, 7, 7],
    ];
    const got = ops.centreCrop(Uint8Array.from(img.flat()), 4, 4, 1, 2);
    expect(Array.from(got.subarray(0, 4))).toEqual([25, 1, 128, 7]);
  });

  it('an image already at the training size passes through unchanged', () => {
    const img = greyImage(32, 32, 3).flat();
    const got = ops.centreCrop(Uint8Array.from(img), 32, 32, 1, 32);
    expect(Array.from(got.subarray(0, 1024))).toEqual(img);
  });

  it('a constant image stays constant under up- and downsampling', () => {
    for (const [w, h, s] of [
      [6, 5, 17],
      [50, 37, 9],
    ]) {
      const got = ops.centreCrop(new Uint8Array(w * h).fill(173), w, h, 1, s);
      expect(got.every((v) => v === 173)).toBe(true);
    }
  });
});

// PIL itself (what the reference code resizes with), when Debian's python3-pil is installed:
// float64 coefficients against PIL's 22-bit fixed point may differ by one level.
const PYTHON = '/usr/bin/python3';
const hasPil = existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import PIL, numpy'], { stdio: 'ignore' }).status === 0;
const PIL_CROP = `
import sys, json, numpy as np
from PIL import Image
cases = json.load(sys.stdin)
out = []
for c in cases:
    arr = np.array(c['pixels'], dtype=np.uint8).reshape(c['h'], c['w'], 3)
    im = Image.fromarray(arr, 'RGB')
    s = c['size']
    while min(*im.size) >= 2 * s:
        im = im.resize(tuple(x // 2 for x in im.size), resample=Image.BOX)
    scale = s / min(*im.size)
    im = im.resize(tuple(round(x * scale) for x in im.size), resample=Image.BICUBIC)
    a = np.array(im)
    y = (a.shape[0] - s) // 2
    x = (a.shape[1] - s) // 2
    out.append(a[y:y + s, x:x + s].transpose(2, 0, 1).reshape(-1).tolist())
print(json.dumps(out))
`;

describe.skipIf(!hasPil)('ADM centre crop against PIL', () => {
  it('agrees with PIL within one level on RGB images of assorted sizes', () => {
    const cases = [
      [32, 32, 32],
      [32, 32, 64],
      [28, 28, 32],
      [57, 43, 16],
      [120, 75, 32],
      [13, 9, 4],
    ].map(([w, h, size], k) => ({
      w,
      h,
      size,
      pixels: Array.from({ length: w * h * 3 }, (_, i) => (Math.imul(i + k, 2654435761) >>> 24) & 255),
    }));
    const run = spawnSync(PYTHON, ['-c', PIL_CROP], { input: JSON.stringify(cases), encoding: 'utf8', maxBuffer: 1 << 26 });
    expect(run.status, run.stderr).toBe(0);
    const want: number[][] = JSON.parse(run.stdout);
    cases.forEach((c, k) => {
      const got = ops.centreCrop(Uint8Array.from(c.pixels), c.w, c.h, 3, c.size);
      let worst = 0;
      got.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - want[k][i]))));
      expect(worst, `${c.w}×${c.h} → ${c.size}`).toBeLessThanOrEqual(1);
    });
  });
});
