/**
 * Forward image resampling with torch.nn.functional.interpolate semantics, for 'bilinear' and
 * 'bicubic' on [B, C, H, W] views (any strides and offsets, f32 or f16; f32 arithmetic).
 *
 * Every mode is separable, so each axis is described by a table of taps: output position o reads
 * K input positions index[o·K + k] with weights weight[o·K + k]. The tables depend only on
 * (in, out, mode, alignCorners, antialias), so they are built on the host, uploaded once and
 * cached per runtime (a training step that resizes 256→224 every time uploads nothing).
 *
 * Why host tables rather than computing coordinates in the shader: PyTorch evaluates the scale,
 * source coordinates and cubic weights of a float tensor in float32, and at coordinates near 255 a
 * single ulp is 1.5e-5 px, which on high-frequency images is already ~2e-5 relative. WGSL lets the
 * compiler fuse `scale * (i + 0.5) - 0.5` into an fma, so only host-side emulation (Math.fround
 * after every step, in PyTorch's order) reproduces PyTorch bit for bit on every adapter.
 *
 *  - plain mode (`antialias` false): one pass, one thread per output, 2×2 (bilinear) or 4×4
 *    (bicubic, Keys a = −0.75, border-clamped indices) taps, summed as Σ_y w_y · (Σ_x w_x · x),
 *    the nesting of PyTorch's generic upsample kernel. Bilinear clamps negative source
 *    coordinates to 0 and copies straight through when in == out, as PyTorch does.
 *  - antialias (PIL style, `_upsample_*_aa`): support = (2 or 4)/2 · max(scale, 1), taps
 *    [trunc(center − support + 0.5), trunc(center + support + 0.5)) ∩ [0, in), weights
 *    filter((j − center + 0.5)/max(scale, 1)) normalised to sum 1 (triangle or Keys a = −0.5).
 *    As in PyTorch this path is used whenever antialias is set, upsampling included (there it
 *    differs from plain bicubic by using a = −0.5 and renormalised border taps). Two separable
 *    passes like PyTorch (width into an f32 scratch [B, C, H, w], then height); an axis whose
 *    size does not change is skipped (its taps would be the identity).
 *
 * Cost: plain K_h·K_w reads per output; antialias K_w per scratch element + K_h per output, with
 * K ≈ 2·support + 1 (37→16 bicubic: K = 10).
 */
import type { PooledBuffer } from '../gpu/buffer-pool.js';
import { hasRuntime, runtime, type Runtime } from '../gpu/runtime.js';
import type { DType } from '../core/dtype.js';
import { enables, FLAT_INDEX, grid1d, WG } from './common.js';
import { uniforms } from './uniforms.js';
import type { View } from './view.js';

export type ResampleMode = 'bilinear' | 'bicubic';

export interface ResampleOptions {
  alignCorners?: boolean;
  antialias?: boolean;
}

/** Taps of one axis: output o reads index[o·k + t] with weight weight[o·k + t], t < k. */
export interface AxisTaps {
  inSize: number;
  outSize: number;
  k: number;
  index: Int32Array;
  weight: Float32Array;
}

const f = Math.fround;

/** area_pixel_compute_scale in float32 (input pixels per output pixel). */
function pixelScale(inSize: number, outSize: number, alignCorners: boolean): number {
  if (alignCorners) return outSize > 1 ? f((inSize - 1) / (outSize - 1)) : 0;
  return f(inSize / outSize);
}

/** Keys cubic, |x| < 1 branch, float32 in PyTorch's operation order. */
function cubicNear(x: number, a: number): number {
  return f(f(f(f(f(a + 2) * x) - f(a + 3)) * x) * x + 1);
}
/** Keys cubic, 1 ≤ |x| < 2 branch. */
function cubicFar(x: number, a: number): number {
  return f(f(f(f(f(f(a * x) - f(5 * a)) * x) + f(8 * a)) * x) - f(4 * a));
}

/** guard_index_and_lambda: integer part ≤ in − 1, fraction in [0, 1]. */
function guard(src: number, inSize: number): [number, number] {
  const idx = Math.min(Math.floor(src), inSize - 1);
  return [idx, Math.min(Math.max(f(src - idx), 0), 1)];
}

function plainTaps(inSize: number, outSize: number, mode: ResampleMode, alignCorners: boolean): AxisTaps {
  const k = mode === 'bilinear' ? 2 : 4;
  const index = new Int32Array(outSize * k);
  const weight = new Float32Array(outSize * k);
  const scale = pixelScale(inSize, outSize, alignCorners);
  for (let o = 0; o < outSize; o++) {
    const src = alignCorners ? f(scale * o) : f(f(scale * f(o + 0.5)) - 0.5);
    if (mode === 'bilinear') {
      if (inSize === outSize) {
        index.set([o, o], o * 2);
        weight.set([1, 0], o * 2);
        continue;
      }
      const [idx, t] = guard(Math.max(src, 0), inSize);
      index.set([idx, idx < inSize - 1 ? idx + 1 : idx], o * 2);
      weight.set([f(1 - t), t], o * 2);
    } else {
      const [idx, t] = guard(src, inSize);
      const a = -0.75;
      const u = f(1 - t);
      for (let j = 0; j < 4; j++) index[o * 4 + j] = Math.min(Math.max(idx - 1 + j, 0), inSize - 1);
      weight.set([cubicFar(f(t + 1), a), cubicNear(t, a), cubicNear(u, a), cubicFar(f(u + 1), a)], o * 4);
    }
  }
  return { inSize, outSize, k, index, weight };
}

function antialiasTaps(inSize: number, outSize: number, mode: ResampleMode, alignCorners: boolean): AxisTaps {
  const interp = mode === 'bilinear' ? 2 : 4;
  const filter =
    mode === 'bilinear'
      ? (x: number) => (Math.abs(x) < 1 ? f(1 - Math.abs(x)) : 0)
      : (x: number) => {
          const t = Math.abs(x);
          return t < 1 ? cubicNear(t, -0.5) : t < 2 ? cubicFar(t, -0.5) : 0;
        };
  const scale = pixelScale(inSize, outSize, alignCorners);
  const support = f(scale >= 1 ? (interp / 2) * scale : interp / 2);
  const invScale = f(scale >= 1 ? 1 / scale : 1);
  const maxTaps = Math.ceil(support) * 2 + 1;
  const rows: { xmin: number; w: number[] }[] = [];
  let k = 1;
  for (let o = 0; o < outSize; o++) {
    // center is a double product stored as float; the bounds add 0.5 in double and truncate.
    const center = f(scale * (o + 0.5));
    const xmin = Math.max(Math.trunc(f(center - support) + 0.5), 0);
    const size = Math.min(Math.max(Math.min(Math.trunc(f(center + support) + 0.5), inSize) - xmin, 0), maxTaps);
    const w: number[] = [];
    let total = 0;
    for (let j = 0; j < size; j++) {
      const v = filter(f((f(j + xmin - center) + 0.5) * invScale));
      w.push(v);
      total = f(total + v);
    }
    if (total !== 0) for (let j = 0; j < size; j++) w[j] = f(w[j] / total);
    rows.push({ xmin, w });
    k = Math.max(k, size);
  }
  const index = new Int32Array(outSize * k);
  const weight = new Float32Array(outSize * k);
  rows.forEach(({ xmin, w }, o) => {
    // Padding taps re-read the first real tap with weight 0: never out of range, never a pixel
    // outside the window.
    for (let j = 0; j < k; j++) {
      index[o * k + j] = Math.min(xmin + (j < w.length ? j : 0), inSize - 1);
      weight[o * k + j] = j < w.length ? w[j] : 0;
    }
  });
  return { inSize, outSize, k, index, weight };
}

/** The taps PyTorch uses along one axis (float32 coordinates and weights). */
export function axisTaps(inSize: number, outSize: number, mode: ResampleMode, opts: ResampleOptions = {}): AxisTaps {
  if (!(Number.isInteger(inSize) && inSize > 0 && Number.isInteger(outSize) && outSize > 0)) {
    throw new RangeError(`resample: sizes must be positive integers, got ${inSize} -> ${outSize}`);
  }
  const alignCorners = opts.alignCorners ?? false;
  return opts.antialias ? antialiasTaps(inSize, outSize, mode, alignCorners) : plainTaps(inSize, outSize, mode, alignCorners);
}

// ---- uploaded tap tables, cached per runtime ----

interface TapTable {
  buffer: PooledBuffer;
  k: number;
}

const tables = new WeakMap<Runtime, Map<string, TapTable>>();

/** The uploaded table [index (out·k u32) | weight bits (out·k u32)] for one axis. */
function tapTable(inSize: number, outSize: number, mode: ResampleMode, opts: ResampleOptions): TapTable {
  const rt = runtime();
  let cache = tables.get(rt);
  if (!cache) tables.set(rt, (cache = new Map()));
  const key = `${inSize}>${outSize}|${mode}|ac${opts.alignCorners ? 1 : 0}|aa${opts.antialias ? 1 : 0}`;
  let t = cache.get(key);
  if (!t) {
    const taps = axisTaps(inSize, outSize, mode, opts);
    const n = outSize * taps.k;
    const words = new Uint32Array(2 * n);
    words.set(new Uint32Array(taps.index.buffer), 0);
    words.set(new Uint32Array(taps.weight.buffer), n);
    const buffer = rt.allocate(words.byteLength, `resample-taps ${key}`);
    rt.upload(buffer, words);
    t = { buffer, k: taps.k };
    cache.set(key, t);
  }
  return t;
}

/** Returns the cached tap tables to the pool (for tests that check the pool returns to baseline). */
export function releaseResampleTables(): void {
  if (!hasRuntime()) return;
  const rt = runtime();
  const cache = tables.get(rt);
  if (!cache) return;
  for (const t of cache.values()) rt.release(t.buffer);
  cache.clear();
}

/** Number of tap tables currently cached (for tests). */
export function resampleTableCount(): number {
  return hasRuntime() ? (tables.get(runtime())?.size ?? 0) : 0;
}

// ---- the kernel: out[b, c, oy, ox] = Σ_a wy[a] · Σ_e wx[e] · x[b, c, iy[a], ix[e]] ----

interface Operand4 {
  buffer: PooledBuffer;
  dtype: DType;
  strides: readonly number[];
  offset: number;
}

/** Taps of one axis for a pass: a table, or null = identity (the axis keeps its size). */
type PassAxis = TapTable | null;

/** n outputs of [B, C, OH, OW]; x's and out's [B, C, H, W] strides and offsets. */
const RESAMPLE_UNIFORMS = uniforms({
  n: 'u32',
  ow: 'u32',
  oh: 'u32',
  c: 'u32',
  x_stride: ['u32', 4],
  x_offset: 'u32',
  out_stride: ['u32', 4],
  out_offset: 'u32',
});

function resamplePass(
  x: Operand4,
  out: Operand4,
  shape: { b: number; c: number; oh: number; ow: number },
  th: PassAxis,
  tw: PassAxis,
): void {
  const n = shape.b * shape.c * shape.oh * shape.ow;
  if (n === 0) return;
  if (n > 0xffffffff) throw new RangeError(`resample: ${n} outputs exceed the u32 index range`);
  const kh = th ? th.k : 0;
  const kw = tw ? tw.k : 0;
  const key = `resample|${x.dtype}>${out.dtype}|kh${kh}|kw${kw}`;
  // Identity axes still need a binding; any read-only buffer does (it is never read).
  const hBuf = (th ?? tw)?.buffer ?? x.buffer;
  const wBuf = (tw ?? th)?.buffer ?? x.buffer;
  const params = RESAMPLE_UNIFORMS.pack({
    n,
    ow: shape.ow,
    oh: shape.oh,
    c: shape.c,
    x_stride: x.strides,
    x_offset: x.offset,
    out_stride: out.strides,
    out_offset: out.offset,
  });
  runtime().dispatch(
    { key, bindings: ['read', 'read', 'read', 'write', 'uniform'], wgsl: () => resampleSource(x.dtype, out.dtype, kh, kw) },
    [x.buffer, hBuf, wBuf, out.buffer],
    grid1d(n),
    params,
  );
}

function resampleSource(xT: DType, outT: DType, kh: number, kw: number): string {
  // Innermost: the sum over width taps of one input row at element offset `row`.
  const rowSum = kw === 0 ? (row: string) => `f32(x_buf[${row} + ox * sW])` : (row: string) => `row_sum(${row}, ox)`;
  const body =
    kh === 0
      ? `  let acc = ${rowSum('base + oy * sH')};`
      : `  var acc = 0.0;
  for (var a = 0u; a < KH; a++) {
    let iy = taps_h[oy * KH + a];
    let wy = bitcast<f32>(taps_h[(OH + oy) * KH + a]);
    acc += ${rowSum('base + iy * sH')} * wy;
  }`;
  const rowFn =
    kw === 0
      ? ''
      : `fn row_sum(row: u32, ox: u32) -> f32 {
  let OW = params.ow;
  let sW = params.x_stride_3;
  var s = 0.0;
  for (var e = 0u; e < KW; e++) {
    let ix = taps_w[ox * KW + e];
    let wx = bitcast<f32>(taps_w[(OW + ox) * KW + e]);
    s += f32(x_buf[row + ix * sW]) * wx;
  }
  return s;
}`;
  return `${enables([xT, outT])}@group(0) @binding(0) var<storage, read> x_buf: array<${xT}>;
@group(0) @binding(1) var<storage, read> taps_h: array<u32>;
@group(0) @binding(2) var<storage, read> taps_w: array<u32>;
@group(0) @binding(3) var<storage, read_write> out_buf: array<${outT}>;
${RESAMPLE_UNIFORMS.wgsl(4)}
const WG = ${WG}u;
const KH = ${kh}u;
const KW = ${kw}u;
${rowFn}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${FLAT_INDEX};
  if (i >= params.n) { return; }
  let OW = params.ow;
  let OH = params.oh;
  let C = params.c;
  let ox = i % OW;
  var t = i / OW;
  let oy = t % OH;
  t = t / OH;
  let c = t % C;
  let b = t / C;
  let sH = params.x_stride_2;
  let sW = params.x_stride_3;
  let base = params.x_offset + b * params.x_stride_0 + c * params.x_stride_1;
${body}
  out_buf[params.out_offset + b * params.out_stride_0 + c * params.out_stride_1 + oy * params.out_stride_2 + ox * params.out_stride_3] = ${outT}(acc);
}`;
}

/**
 * out = interpolate(x, size = out.shape[2:], mode, align_corners, antialias), PyTorch semantics.
 * x: [B, C, H, W] with any strides; out: [B, C, h, w] (any strides; normally contiguous).
 * Records one dispatch (plain) or up to two (antialias); never waits.
 */
export function interpolateInto(x: View, out: View, mode: ResampleMode, opts: ResampleOptions = {}): void {
  if (mode !== 'bilinear' && mode !== 'bicubic') throw new TypeError(`interpolate: unknown mode ${JSON.stringify(mode)}`);
  if (x.shape.length !== 4 || out.shape.length !== 4) {
    throw new RangeError(`interpolate: x and out must be [B, C, H, W]; got [${x.shape.join(', ')}] and [${out.shape.join(', ')}]`);
  }
  const [b, c, ih, iw] = x.shape;
  const [ob, oc, oh, ow] = out.shape;
  if (b !== ob || c !== oc)
    throw new RangeError(`interpolate: batch/channels differ: [${x.shape.join(', ')}] -> [${out.shape.join(', ')}]`);
  for (const v of [x, out])
    if (v.dtype !== 'f32' && v.dtype !== 'f16') throw new TypeError(`interpolate: dtype ${v.dtype} is not supported (f32, f16)`);
  if (b * c * oh * ow === 0) return;
  if (ih === 0 || iw === 0) throw new RangeError('interpolate: input has an empty spatial dim');
  const norm = { alignCorners: opts.alignCorners ?? false, antialias: opts.antialias ?? false };

  if (!norm.antialias) {
    resamplePass(x, out, { b, c, oh, ow }, tapTable(ih, oh, mode, norm), tapTable(iw, ow, mode, norm));
    return;
  }
  const tw = iw !== ow ? tapTable(iw, ow, mode, norm) : null;
  const th = ih !== oh ? tapTable(ih, oh, mode, norm) : null;
  if (!tw || !th) {
    // One axis (or none: a copy) changes size: a single pass straight into out.
    resamplePass(x, out, { b, c, oh, ow }, th, tw);
    return;
  }
  const rt = runtime();
  const scratch = rt.allocate(b * c * ih * ow * 4, 'resample-scratch');
  const sStrides = [c * ih * ow, ih * ow, ow, 1];
  const mid: Operand4 = { buffer: scratch, dtype: 'f32', strides: sStrides, offset: 0 };
  resamplePass(x, mid, { b, c, oh: ih, ow }, null, tw);
  resamplePass(mid, out, { b, c, oh, ow }, th, null);
  // Safe: the pool reuses a released buffer only after the batch that reads it is submitted.
  rt.release(scratch);
}
