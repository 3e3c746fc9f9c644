/**
 * Image resampling matching torch.nn.functional.interpolate (CPU kernels, float path) for
 * 'bilinear' and 'bicubic', with and without antialiasing.
 *
 * Every mode here is separable, so each is expressed as a list of taps per output position
 * along one axis ("output j = sum_t weight[t] * input[index[t]]"), applied to width then height
 * (the order PyTorch uses; in exact arithmetic it does not matter). The tap construction mirrors
 * aten/src/ATen/native/UpSample.h and cpu/UpSampleKernel.cpp:
 *
 *  - non-antialiased: source coordinate src = scale*(i+0.5)-0.5 (align_corners=false) or
 *    scale*i (align_corners=true); 'bilinear' clamps negative src to 0, 'bicubic' does not; the
 *    integer part is guarded to <= in-1. Bicubic uses Keys' kernel with a = -0.75 and reads
 *    out-of-range neighbours from the clamped border index.
 *  - antialiased (PIL-style, `_upsample_*_aa`): center = scale*(i+0.5), support = (interp/2) *
 *    max(scale, 1) (interp = 2 bilinear, 4 bicubic), taps j in [max(0, trunc(center-support+0.5)),
 *    min(in, trunc(center+support+0.5))), weight filter((j-center+0.5)/max(scale,1)) normalised to
 *    sum 1; bicubic filter uses a = -0.5 (and so does antialiased *up*sampling).
 */
import { NDArray, ndSize, ndZeros } from './ndarray.js';

export type InterpMode = 'bilinear' | 'bicubic';

export interface InterpolateOptions {
  alignCorners?: boolean;
  antialias?: boolean;
  /**
   * PyTorch `scale_factor` per spatial axis [h, w]. When given (and recompute_scale_factor is not
   * used) PyTorch derives the source mapping from 1/scaleFactor instead of in/out; the output size
   * defaults to floor(in * scaleFactor).
   */
  scaleFactor?: [number, number];
}

/** Taps for one output position: output = sum_t weight[t] * input[index[t]]. */
export interface Taps {
  index: number[];
  weight: number[];
}

/** Keys cubic convolution kernel, |x| < 1 branch. */
function cubic1(x: number, a: number): number {
  return ((a + 2) * x - (a + 3)) * x * x + 1;
}
/** Keys cubic convolution kernel, 1 <= |x| < 2 branch. */
function cubic2(x: number, a: number): number {
  return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
}

/** Keys cubic kernel W(x) with parameter a (0 outside |x| < 2). */
export function cubicKernel(x: number, a: number): number {
  const t = Math.abs(x);
  if (t < 1) return cubic1(t, a);
  if (t < 2) return cubic2(t, a);
  return 0;
}

/** The four bicubic weights for neighbours idx-1..idx+2 at fractional offset t in [0, 1]. */
export function cubicCoefficients(t: number, a = -0.75): [number, number, number, number] {
  return [cubic2(t + 1, a), cubic1(t, a), cubic1(1 - t, a), cubic2(2 - t, a)];
}

/** Triangle filter used by antialiased bilinear. */
function triangle(x: number): number {
  const t = Math.abs(x);
  return t < 1 ? 1 - t : 0;
}

/** area_pixel_compute_scale: input-pixels per output-pixel. */
export function areaPixelScale(inSize: number, outSize: number, alignCorners: boolean, scaleFactor?: number): number {
  if (alignCorners) return outSize > 1 ? (inSize - 1) / (outSize - 1) : 0;
  return scaleFactor !== undefined && scaleFactor > 0 ? 1 / scaleFactor : inSize / outSize;
}

/** guard_index_and_lambda: integer part kept <= in-1 and the fraction kept in [0, 1]. */
function guardIndex(src: number, inSize: number): { idx: number; t: number } {
  const idx = Math.min(Math.floor(src), inSize - 1);
  const t = Math.min(Math.max(src - idx, 0), 1);
  return { idx, t };
}

/** Per-output taps along one axis for the given mode/options. */
export function resampleTaps(
  inSize: number,
  outSize: number,
  mode: InterpMode,
  opts: { alignCorners?: boolean; antialias?: boolean; scaleFactor?: number } = {},
): Taps[] {
  const alignCorners = opts.alignCorners ?? false;
  const scale = areaPixelScale(inSize, outSize, alignCorners, opts.scaleFactor);
  const taps: Taps[] = [];
  for (let i = 0; i < outSize; i++) {
    if (opts.antialias) taps.push(antialiasTaps(i, inSize, scale, mode));
    else if (mode === 'bilinear') taps.push(bilinearTaps(i, inSize, outSize, scale, alignCorners));
    else taps.push(bicubicTaps(i, inSize, scale, alignCorners));
  }
  return taps;
}

function bilinearTaps(i: number, inSize: number, outSize: number, scale: number, alignCorners: boolean): Taps {
  // PyTorch copies straight through when the sizes agree, whatever the scale says.
  if (inSize === outSize) return { index: [i], weight: [1] };
  let src = alignCorners ? scale * i : scale * (i + 0.5) - 0.5;
  if (src < 0) src = 0; // linear modes clamp; cubic does not
  const { idx, t } = guardIndex(src, inSize);
  const next = idx < inSize - 1 ? idx + 1 : idx;
  return { index: [idx, next], weight: [1 - t, t] };
}

function bicubicTaps(i: number, inSize: number, scale: number, alignCorners: boolean): Taps {
  const src = alignCorners ? scale * i : scale * (i + 0.5) - 0.5;
  const { idx, t } = guardIndex(src, inSize);
  const clampIndex = (j: number) => Math.min(Math.max(j, 0), inSize - 1);
  return {
    index: [idx - 1, idx, idx + 1, idx + 2].map(clampIndex),
    weight: cubicCoefficients(t, -0.75),
  };
}

function antialiasTaps(i: number, inSize: number, scale: number, mode: InterpMode): Taps {
  const interpSize = mode === 'bilinear' ? 2 : 4;
  const filter = mode === 'bilinear' ? triangle : (x: number) => cubicKernel(x, -0.5);
  // When downsampling (scale >= 1) the filter is stretched by `scale` to low-pass the input.
  const support = scale >= 1 ? (interpSize / 2) * scale : interpSize / 2;
  const invScale = scale >= 1 ? 1 / scale : 1;
  const center = scale * (i + 0.5);
  // C++ static_cast<int64_t> truncates toward zero; the max with 0 makes it equal to floor here.
  const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
  const xmax = Math.min(Math.trunc(center + support + 0.5), inSize);
  const index: number[] = [];
  const weight: number[] = [];
  let total = 0;
  for (let j = xmin; j < xmax; j++) {
    const w = filter((j - center + 0.5) * invScale);
    index.push(j);
    weight.push(w);
    total += w;
  }
  if (total !== 0) for (let t = 0; t < weight.length; t++) weight[t] /= total;
  return { index, weight };
}

/** Applies per-output taps along `axis` of x. */
export function resampleAxis(x: NDArray, axis: number, taps: readonly Taps[]): NDArray {
  const n = x.shape[axis];
  const outShape = [...x.shape];
  outShape[axis] = taps.length;
  const outer = ndSize(x.shape.slice(0, axis));
  const inner = ndSize(x.shape.slice(axis + 1));
  const out = ndZeros(outShape);
  for (const t of taps) for (const j of t.index) if (j < 0 || j >= n) throw new Error('resampleAxis: tap out of range');
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < taps.length; i++) {
      const { index, weight } = taps[i];
      const dst = (o * taps.length + i) * inner;
      for (let t = 0; t < index.length; t++) {
        const src = (o * n + index[t]) * inner;
        const w = weight[t];
        for (let k = 0; k < inner; k++) out.data[dst + k] += w * x.data[src + k];
      }
    }
  }
  return out;
}

/**
 * torch.nn.functional.interpolate for x [B, C, H, W] (or any [..., H, W]) to `size` [h, w].
 * `size` may be omitted when opts.scaleFactor is given.
 */
export function interpolate(
  x: NDArray,
  size: [number, number] | undefined,
  mode: InterpMode,
  opts: InterpolateOptions = {},
): NDArray {
  if (x.shape.length < 2) throw new Error('interpolate: input needs at least 2 dims [..., H, W]');
  const rank = x.shape.length;
  const [inH, inW] = x.shape.slice(-2);
  const sf = opts.scaleFactor;
  const outSize: [number, number] = size ?? (sf ? [Math.floor(inH * sf[0]), Math.floor(inW * sf[1])] : [0, 0]);
  if (!size && !sf) throw new Error('interpolate: give size or scaleFactor');
  if (outSize.some((s) => !Number.isInteger(s) || s <= 0)) throw new Error(`interpolate: bad output size [${outSize.join(', ')}]`);
  const common = { alignCorners: opts.alignCorners, antialias: opts.antialias };
  const tapsW = resampleTaps(inW, outSize[1], mode, { ...common, scaleFactor: sf?.[1] });
  const tapsH = resampleTaps(inH, outSize[0], mode, { ...common, scaleFactor: sf?.[0] });
  return resampleAxis(resampleAxis(x, rank - 1, tapsW), rank - 2, tapsH);
}
