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
 *
 * By default all of this is evaluated in float64 (the exact-arithmetic answer). PyTorch evaluates
 * the scale, source coordinates and weights of a float32 tensor in float32; on high-frequency
 * images that shifts results by ~1e-5 relative. `float32Coords: true` rounds each of those steps
 * with Math.fround, in PyTorch's order, to reproduce its float32 results to ~1e-6 (the weighted
 * sums themselves stay float64).
 */
import { type NDArray, ndSize, ndZeros } from './ndarray.js';

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
  /** Emulate PyTorch's float32 evaluation of scale, coordinates and weights (see file comment). */
  float32Coords?: boolean;
}

/** Per-axis options for resampleTaps. */
export interface TapOptions {
  alignCorners?: boolean;
  antialias?: boolean;
  scaleFactor?: number;
  float32Coords?: boolean;
}

/** Rounding applied after each arithmetic step: identity (float64) or Math.fround (float32). */
export type Round = (v: number) => number;
const exact: Round = (v) => v;

/** Taps for one output position: output = sum_t weight[t] * input[index[t]]. */
export interface Taps {
  index: number[];
  weight: number[];
}

/** Keys cubic convolution kernel, |x| < 1 branch: ((a+2)x - (a+3))x^2 + 1. */
function cubic1(x: number, a: number, r: Round = exact): number {
  return r(r(r(r(r(a + 2) * x) - r(a + 3)) * x) * x + 1);
}
/** Keys cubic convolution kernel, 1 <= |x| < 2 branch: ((ax - 5a)x + 8a)x - 4a. */
function cubic2(x: number, a: number, r: Round = exact): number {
  return r(r(r(r(r(r(a * x) - r(5 * a)) * x) + r(8 * a)) * x) - r(4 * a));
}

/** Keys cubic kernel W(x) with parameter a (0 outside |x| < 2). */
export function cubicKernel(x: number, a: number, r: Round = exact): number {
  const t = Math.abs(x);
  if (t < 1) return cubic1(t, a, r);
  if (t < 2) return cubic2(t, a, r);
  return 0;
}

/**
 * The four bicubic weights for neighbours idx-1..idx+2 at fractional offset t in [0, 1]
 * (get_cubic_upsample_coefficients: the last uses (1-t)+1, equal to 2-t in exact arithmetic).
 */
export function cubicCoefficients(t: number, a = -0.75, r: Round = exact): [number, number, number, number] {
  const x2 = r(1 - t);
  return [cubic2(r(t + 1), a, r), cubic1(t, a, r), cubic1(x2, a, r), cubic2(r(x2 + 1), a, r)];
}

/** Triangle filter used by antialiased bilinear. */
function triangle(x: number, r: Round = exact): number {
  const t = Math.abs(x);
  return t < 1 ? r(1 - t) : 0;
}

/** area_pixel_compute_scale: input-pixels per output-pixel. */
export function areaPixelScale(inSize: number, outSize: number, alignCorners: boolean, scaleFactor?: number, r: Round = exact): number {
  if (alignCorners) return outSize > 1 ? r((inSize - 1) / (outSize - 1)) : 0;
  return scaleFactor !== undefined && scaleFactor > 0 ? r(1 / scaleFactor) : r(inSize / outSize);
}

/** area_pixel_compute_source_index, before the linear-mode clamp at 0. */
function sourceIndex(scale: number, i: number, alignCorners: boolean, r: Round): number {
  return alignCorners ? r(scale * i) : r(r(scale * r(i + 0.5)) - 0.5);
}

/** guard_index_and_lambda: integer part kept <= in-1 and the fraction kept in [0, 1]. */
function guardIndex(src: number, inSize: number, r: Round): { idx: number; t: number } {
  const idx = Math.min(Math.floor(src), inSize - 1);
  const t = Math.min(Math.max(r(src - idx), 0), 1);
  return { idx, t };
}

/** Per-output taps along one axis for the given mode/options. */
export function resampleTaps(inSize: number, outSize: number, mode: InterpMode, opts: TapOptions = {}): Taps[] {
  const alignCorners = opts.alignCorners ?? false;
  const r: Round = opts.float32Coords ? Math.fround : exact;
  const scale = areaPixelScale(inSize, outSize, alignCorners, opts.scaleFactor, r);
  const taps: Taps[] = [];
  for (let i = 0; i < outSize; i++) {
    if (opts.antialias) taps.push(antialiasTaps(i, inSize, scale, mode, r));
    else if (mode === 'bilinear') taps.push(bilinearTaps(i, inSize, outSize, scale, alignCorners, r));
    else taps.push(bicubicTaps(i, inSize, scale, alignCorners, r));
  }
  return taps;
}

function bilinearTaps(i: number, inSize: number, outSize: number, scale: number, alignCorners: boolean, r: Round): Taps {
  // PyTorch copies straight through when the sizes agree, whatever the scale says.
  if (inSize === outSize) return { index: [i], weight: [1] };
  let src = sourceIndex(scale, i, alignCorners, r);
  if (src < 0) src = 0; // linear modes clamp; cubic does not
  const { idx, t } = guardIndex(src, inSize, r);
  const next = idx < inSize - 1 ? idx + 1 : idx;
  return { index: [idx, next], weight: [r(1 - t), t] };
}

function bicubicTaps(i: number, inSize: number, scale: number, alignCorners: boolean, r: Round): Taps {
  const { idx, t } = guardIndex(sourceIndex(scale, i, alignCorners, r), inSize, r);
  const clampIndex = (j: number) => Math.min(Math.max(j, 0), inSize - 1);
  return {
    index: [idx - 1, idx, idx + 1, idx + 2].map(clampIndex),
    weight: cubicCoefficients(t, -0.75, r),
  };
}

function antialiasTaps(i: number, inSize: number, scale: number, mode: InterpMode, r: Round): Taps {
  const interpSize = mode === 'bilinear' ? 2 : 4;
  const filter = mode === 'bilinear' ? (x: number) => triangle(x, r) : (x: number) => cubicKernel(x, -0.5, r);
  // When downsampling (scale >= 1) the filter is stretched by `scale` to low-pass the input.
  // (In C++ these mix float and double: `scale * (i + 0.5)` is a double product stored as float.)
  const support = r(scale >= 1 ? (interpSize / 2) * scale : interpSize / 2);
  const invScale = r(scale >= 1 ? 1 / scale : 1);
  const center = r(scale * (i + 0.5));
  // C++ static_cast<int64_t> truncates toward zero; the max with 0 makes it equal to floor here.
  const xmin = Math.max(Math.trunc(r(center - support) + 0.5), 0);
  const xmax = Math.min(Math.trunc(r(center + support) + 0.5), inSize);
  const index: number[] = [];
  const weight: number[] = [];
  let total = 0;
  for (let j = xmin; j < xmax; j++) {
    const w = filter(r((r(j - center) + 0.5) * invScale));
    index.push(j);
    weight.push(w);
    total = r(total + w);
  }
  if (total !== 0) for (let t = 0; t < weight.length; t++) weight[t] = r(weight[t] / total);
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
export function interpolate(x: NDArray, size: [number, number] | undefined, mode: InterpMode, opts: InterpolateOptions = {}): NDArray {
  if (x.shape.length < 2) throw new Error('interpolate: input needs at least 2 dims [..., H, W]');
  const rank = x.shape.length;
  const [inH, inW] = x.shape.slice(-2);
  const sf = opts.scaleFactor;
  const outSize: [number, number] = size ?? (sf ? [Math.floor(inH * sf[0]), Math.floor(inW * sf[1])] : [0, 0]);
  if (!size && !sf) throw new Error('interpolate: give size or scaleFactor');
  if (outSize.some((s) => !Number.isInteger(s) || s <= 0)) throw new Error(`interpolate: bad output size [${outSize.join(', ')}]`);
  const common = { alignCorners: opts.alignCorners, antialias: opts.antialias, float32Coords: opts.float32Coords };
  const tapsW = resampleTaps(inW, outSize[1], mode, { ...common, scaleFactor: sf?.[1] });
  const tapsH = resampleTaps(inH, outSize[0], mode, { ...common, scaleFactor: sf?.[0] });
  return resampleAxis(resampleAxis(x, rank - 1, tapsW), rank - 2, tapsH);
}
