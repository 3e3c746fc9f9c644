/**
 * 2-D convolution (NCHW, OIHW weights; stride, padding, dilation, groups) as implicit GEMM: each
 * thread keeps an RM×RN block of outputs in registers and gathers its operands straight from
 * the tensors, computing each tap's input coordinate (and whether it falls in the padding) on
 * the fly, so no im2col matrix ever exists in memory. Three kernels, one generator:
 *
 *  - 'forward':  rows = output channels of a group, columns = output pixels (n, oh, ow),
 *                K = (ci, kh, kw) of the group.  y = W ⋆ x (+ bias).
 *  - 'dinput':   rows = input channels of a group, columns = input pixels (n, ih, iw),
 *                K = (co, kh, kw): the transposed convolution dx = Wᵀ ⋆ᵀ dy; a tap contributes
 *                only where ih + pad − kh·dil is a non-negative multiple of the stride.
 *  - 'dweight':  rows = output channels of a group, columns = (ci, kh, kw), K = (n, oh, ow):
 *                the correlation of x with dy. K is long (every output pixel) and M×N small for
 *                early layers, so K is split over `splits` ranges of (n, oh) rows, each writing a
 *                partial [Co, Cig, KH, KW] slice; the caller sums the slices.
 *
 * Edges need no padding of the operands: column and row indices are clamped for loads and the
 * stores are guarded, so no size needs to be a multiple of the tile. Accumulation is f32; inputs
 * may be f32 or f16; outputs are f32. Bias gradients are a plain reduction (the autograd op).
 *
 * The forward may apply a relu in its store, and a 1×1 stride-1 forward (a third of InceptionV3's
 * time before) is handed to the tuned matmul instead: on lavapipe it ran 2–2.5× faster there
 * (bench/inception-layers.ts). Its summation order is the matmul's, so the two routes agree to
 * rounding, not bit for bit.
 */
import { runtime } from '../gpu/runtime.js';
import type { DType } from '../core/dtype.js';
import { fmt, sizeOf } from '../core/shape.js';
import { enables, fixedSubgroupSize } from './common.js';
import type { ConvConfig } from './conv-config.js';
import { matmulInto } from './matmul.js';
import { adapterTuning } from './tuning.js';
import { uniforms } from './uniforms.js';
import { isContiguous, type View } from './view.js';
import { MATH_WGSL } from './wgsl-math.js';

export type ConvKind = 'forward' | 'dinput' | 'dweight';

/** Applied to the forward's output after the bias (relu passes NaN through, as PyTorch does). */
export type ConvActivation = 'none' | 'relu';

export interface Conv2dForwardOptions {
  /** Overrides the adapter's tile of the implicit-GEMM kernel (tests, benchmarks); the matmul route ignores it. */
  config?: ConvConfig;
  activation?: ConvActivation;
  /**
   * 'auto': a 1×1, stride-1, unpadded, ungrouped convolution is a matrix product per image and
   * runs as one (the tuned matmul kernel, bias and activation in its epilogue); 'implicit': always
   * the implicit-GEMM kernel (tests and benchmarks compare the two).
   */
  route?: 'auto' | 'implicit';
}

export type { ConvConfig } from './conv-config.js';

/** Geometry of one convolution, all sizes in elements. */
export interface ConvGeometry {
  N: number;
  C: number;
  H: number;
  W: number;
  Co: number;
  OH: number;
  OW: number;
  KH: number;
  KW: number;
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
  groups: number;
}

const CONV_UNIFORMS = uniforms({
  N: 'u32',
  C: 'u32',
  H: 'u32',
  W: 'u32',
  Co: 'u32',
  OH: 'u32',
  OW: 'u32',
  KH: 'u32',
  KW: 'u32',
  sh: 'u32',
  sw: 'u32',
  ph: 'u32',
  pw: 'u32',
  dh: 'u32',
  dw: 'u32',
  groups: 'u32',
  Cig: 'u32',
  Cog: 'u32',
  splits: 'u32',
  rowsPerSplit: 'u32',
  a_offset: 'u32',
  b_offset: 'u32',
  c_offset: 'u32',
  o_offset: 'u32',
});

/** Output size of one spatial axis (PyTorch's formula); ≤ 0 means the kernel does not fit. */
export function convOutSize(size: number, k: number, stride: number, pad: number, dil: number): number {
  return Math.floor((size + 2 * pad - dil * (k - 1) - 1) / stride) + 1;
}

function checkView(v: View, shape: readonly number[], op: string, what: string, out = false): void {
  if (fmt(v.shape) !== fmt(shape)) throw new RangeError(`${op}: ${what} must have shape ${fmt(shape)}, got ${fmt(v.shape)}`);
  if (!isContiguous(v)) throw new RangeError(`${op}: ${what} must be contiguous`);
  const ok = out ? v.dtype === 'f32' : v.dtype === 'f32' || v.dtype === 'f16';
  if (!ok) throw new TypeError(`${op}: ${what} must be ${out ? 'f32' : 'f32 or f16'}, got ${v.dtype}`);
}

function checkGeometry(g: ConvGeometry, op: string): void {
  const all = [g.N, g.C, g.H, g.W, g.Co, g.OH, g.OW, g.KH, g.KW, ...g.stride, ...g.padding, ...g.dilation, g.groups];
  if (all.some((v) => !Number.isInteger(v) || v < 0))
    throw new RangeError(`${op}: geometry must be non-negative integers, got ${JSON.stringify(g)}`);
  if (g.groups < 1 || g.C % g.groups || g.Co % g.groups)
    throw new RangeError(`${op}: groups ${g.groups} must divide C = ${g.C} and Co = ${g.Co}`);
  if (
    g.OH !== convOutSize(g.H, g.KH, g.stride[0], g.padding[0], g.dilation[0]) ||
    g.OW !== convOutSize(g.W, g.KW, g.stride[1], g.padding[1], g.dilation[1])
  ) {
    throw new RangeError(`${op}: output ${g.OH}×${g.OW} does not match input ${g.H}×${g.W} with this kernel/stride/padding/dilation`);
  }
}

const xShape = (g: ConvGeometry) => [g.N, g.C, g.H, g.W];
const wShape = (g: ConvGeometry) => [g.Co, g.C / g.groups, g.KH, g.KW];
const yShape = (g: ConvGeometry) => [g.N, g.Co, g.OH, g.OW];

/** Whether the forward is a plain matrix product per image: y[n] = W [Co, C] · x[n] [C, H·W]. */
export function isPointwiseConv(g: ConvGeometry): boolean {
  return g.KH === 1 && g.KW === 1 && g.stride.every((s) => s === 1) && g.padding.every((p) => p === 0) && g.groups === 1;
}

/**
 * y = act(conv(x, w) + bias). x [N, C, H, W], w [Co, C/groups, KH, KW], bias [Co], y [N, Co, OH, OW] f32.
 */
export function conv2dInto(x: View, w: View, bias: View | undefined, y: View, g: ConvGeometry, opts: Conv2dForwardOptions = {}): void {
  checkGeometry(g, 'conv2d');
  checkView(x, xShape(g), 'conv2d', 'x');
  checkView(w, wShape(g), 'conv2d', 'weight');
  if (bias) checkView(bias, [g.Co], 'conv2d', 'bias');
  checkView(y, yShape(g), 'conv2d', 'out', true);
  const activation = opts.activation ?? 'none';
  if (activation !== 'none' && activation !== 'relu') throw new RangeError(`conv2d: unknown activation ${JSON.stringify(activation)}`);
  if ((opts.route ?? 'auto') === 'auto' && isPointwiseConv(g)) {
    pointwiseAsMatmul(x, w, bias, y, g, activation);
    return;
  }
  launch('forward', g, bias ? [x, w, bias] : [x, w], y, 1, opts.config, activation);
}

/**
 * A 1×1 convolution as the batched product yᵀ[n] = xᵀ[n] · Wᵀ ([H·W, C] · [C, Co]), all three
 * operands strided views of the NCHW/OIHW buffers: the output channels are the columns, so the
 * bias and activation are the matmul epilogue's (its bias runs along columns).
 */
function pointwiseAsMatmul(x: View, w: View, bias: View | undefined, y: View, g: ConvGeometry, activation: ConvActivation): void {
  const HW = g.H * g.W;
  matmulInto(
    { buffer: x.buffer, dtype: x.dtype, shape: [g.N, HW, g.C], strides: [g.C * HW, 1, HW], offset: x.offset },
    { buffer: w.buffer, dtype: w.dtype, shape: [g.C, g.Co], strides: [1, g.C], offset: w.offset },
    { buffer: y.buffer, dtype: y.dtype, shape: [g.N, HW, g.Co], strides: [g.Co * HW, 1, HW], offset: y.offset },
    { bias, activation },
  );
}

/** dx = the gradient of conv2d with respect to its input, from dy [N, Co, OH, OW] and w. */
export function conv2dInputGradInto(dy: View, w: View, dx: View, g: ConvGeometry, config?: ConvConfig): void {
  checkGeometry(g, 'conv2dInputGrad');
  checkView(dy, yShape(g), 'conv2dInputGrad', 'dy');
  checkView(w, wShape(g), 'conv2dInputGrad', 'weight');
  checkView(dx, xShape(g), 'conv2dInputGrad', 'dx', true);
  launch('dinput', g, [dy, w], dx, 1, config);
}

/** How many K ranges the weight gradient is split into (see the header), for `partial`'s shape. */
export function conv2dWeightGradSplits(g: ConvGeometry, config?: ConvConfig): number {
  const c = config ?? adapterTuning().conv;
  const tiles = Math.ceil(g.Co / g.groups / (c.wgY * c.rm)) * Math.ceil(((g.C / g.groups) * g.KH * g.KW) / (c.wgX * c.rn)) * g.groups;
  const rows = g.N * g.OH;
  // Enough workgroups to fill the adapter, but ≥ 4 (n, oh) rows of work per split.
  return Math.max(1, Math.min(Math.ceil(256 / tiles), Math.floor(rows / 4), 64));
}

/**
 * partial[s] = the weight gradient's share of (n, oh) rows range s, for s < splits
 * (conv2dWeightGradSplits); their sum over s is dW. partial: [splits, Co, C/groups, KH, KW] f32.
 */
export function conv2dWeightGradInto(x: View, dy: View, partial: View, g: ConvGeometry, splits: number, config?: ConvConfig): void {
  checkGeometry(g, 'conv2dWeightGrad');
  checkView(x, xShape(g), 'conv2dWeightGrad', 'x');
  checkView(dy, yShape(g), 'conv2dWeightGrad', 'dy');
  if (!Number.isInteger(splits) || splits < 1) throw new RangeError(`conv2dWeightGrad: splits must be a positive integer, got ${splits}`);
  checkView(partial, [splits, ...wShape(g)], 'conv2dWeightGrad', 'partial', true);
  launch('dweight', g, [x, dy], partial, splits, config);
}

function launch(
  kind: ConvKind,
  g: ConvGeometry,
  ins: View[],
  out: View,
  splits: number,
  config?: ConvConfig,
  activation: ConvActivation = 'none',
): void {
  if (sizeOf(out.shape) === 0) return;
  let c = config ?? adapterTuning().conv;
  if (c.lanes && !(kind === 'forward' && fixedSubgroupSize() === c.lanes)) c = { ...c, lanes: undefined };
  const Cig = g.C / g.groups;
  const Cog = g.Co / g.groups;
  // Rows × columns of the GEMM each kind computes per group.
  const [rows, cols] =
    kind === 'forward' ? [Cog, g.N * g.OH * g.OW] : kind === 'dinput' ? [Cig, g.N * g.H * g.W] : [Cog, Cig * g.KH * g.KW];
  const K = kind === 'forward' ? Cig * g.KH * g.KW : kind === 'dinput' ? Cog * g.KH * g.KW : g.N * g.OH * g.OW;
  if (K === 0) throw new RangeError(`conv2d (${kind}): empty reduction (K = 0) is not supported`);
  const hasBias = kind === 'forward' && ins.length === 3;
  const dtypes = ins.map((v) => v.dtype);
  // The input gradient at stride 1 needs no divisibility test or division per tap.
  const unitStride = kind === 'dinput' && g.stride[0] === 1 && g.stride[1] === 1;
  const key = `conv|${kind}|${c.wgX}x${c.wgY}|${c.rm}x${c.rn}${c.lanes ? `|l${c.lanes}` : ''}|bias${hasBias}|unit${unitStride}|${activation}|${dtypes.join(',')}`;
  const rowsPerSplit = Math.ceil((g.N * g.OH) / splits);
  const params = CONV_UNIFORMS.pack({
    N: g.N,
    C: g.C,
    H: g.H,
    W: g.W,
    Co: g.Co,
    OH: g.OH,
    OW: g.OW,
    KH: g.KH,
    KW: g.KW,
    sh: g.stride[0],
    sw: g.stride[1],
    ph: g.padding[0],
    pw: g.padding[1],
    dh: g.dilation[0],
    dw: g.dilation[1],
    groups: g.groups,
    Cig,
    Cog,
    splits,
    rowsPerSplit,
    a_offset: ins[0].offset,
    b_offset: ins[1].offset,
    c_offset: ins[2]?.offset ?? 0,
    o_offset: out.offset,
  });
  const gridX = Math.ceil(cols / (c.wgX * c.rn));
  const gridY = Math.ceil(rows / (c.wgY * c.rm));
  runtime().dispatch(
    {
      key,
      bindings: [...ins.map(() => 'read' as const), 'write', 'uniform'],
      wgsl: () => convSource(kind, c, hasBias, dtypes, unitStride, activation),
    },
    [...ins.map((v) => v.buffer), out.buffer],
    [gridX, gridY, g.groups * splits],
    params,
  );
}

/** The WGSL of one kernel kind and tile (cache key: kind, tile, bias, unit stride, activation, input dtypes). */
export function convSource(
  kind: ConvKind,
  c: ConvConfig,
  hasBias: boolean,
  inT: DType[],
  unitStride = false,
  activation: ConvActivation = 'none',
): string {
  const { wgX: WX, wgY: WY, rm: RM, rn: RN } = c;
  // Shared weight rows (ConvConfig.lanes): forward with vec4 accumulators only.
  const L = kind === 'forward' && RN % 4 === 0 && c.lanes ? c.lanes : undefined;
  if (L && (RM % L !== 0 || WX !== L)) throw new RangeError(`conv2d: config ${JSON.stringify(c)} needs rm % lanes == 0 and wgX == lanes`);
  const Q = [...Array(L ? RM / L : 0).keys()];
  const I = [...Array(RM).keys()];
  const J = [...Array(RN).keys()];
  const names = ['A', 'B', 'Cb'];
  const decl = [
    ...inT.map((t, k) => `@group(0) @binding(${k}) var<storage, read> ${names[k]}: array<${t}>;`),
    `@group(0) @binding(${inT.length}) var<storage, read_write> O: array<f32>;`,
    CONV_UNIFORMS.wgsl(inT.length + 1),
  ].join('\n');
  const fma = (a: (i: number) => string, b: (j: number) => string) =>
    I.flatMap((i) => J.map((j) => `acc${i}_${j} = fma(${a(i)}, ${b(j)}, acc${i}_${j});`)).join('\n      ');
  // The forward keeps its accumulators as vec4s along columns when RN allows (as the matmul
  // kernels do): a quarter of the FMA instructions, which is what LLVM's compile time scales with.
  const vec = kind === 'forward' && RN % 4 === 0;
  const G = [...Array(RN / 4).keys()];
  const accs = vec
    ? I.flatMap((i) => G.map((q) => `var acc${i}_${q} = vec4<f32>(0.0);`)).join('\n  ')
    : I.flatMap((i) => J.map((j) => `var acc${i}_${j} = 0.0;`)).join('\n  ');
  const accOf = (i: number, j: number) => (vec ? `acc${i}_${j >> 2}[${j & 3}]` : `acc${i}_${j}`);
  const common = `let HW = params.H * params.W;
  let OHW = params.OH * params.OW;
  let KK = params.KH * params.KW;
  let Cig = params.Cig;
  let Cog = params.Cog;`;
  let setup: string;
  let loop: string;
  let store: string;
  if (kind === 'forward') {
    // A = x, B = w. Columns: output pixels; rows: output channels of group g.
    setup = `let g = wid.z;
  let P = params.N * OHW;
  ${J.map(
    (j) => `let c${j} = col0 + ${j * WX}u;
  let cc${j} = min(c${j}, P - 1u);
  let n${j} = cc${j} / OHW;
  let r${j} = cc${j} % OHW;
  let ih${j} = i32((r${j} / params.OW) * params.sh) - i32(params.ph);
  let iw${j} = i32((r${j} % params.OW) * params.sw) - i32(params.pw);
  let xb${j} = params.a_offset + (n${j} * params.C + g * Cig) * HW;`,
  ).join('\n  ')}
  ${I.map(
    (i) => `let co${i} = g * Cog + min(row0 + ${i * WY}u, Cog - 1u);
  let wb${i} = params.b_offset + co${i} * Cig * KK;`,
  ).join('\n  ')}
  ${Q.map((q) => `let wl${q} = params.b_offset + (g * Cog + min(row0 + (${q * (L ?? 0)}u + lane) * ${WY}u, Cog - 1u)) * Cig * KK;`).join('\n  ')}`;
    // Taps outermost: each tap's input coordinates and padding test are computed once per column
    // and the inner loop over input channels is two strided loads per operand element.
    loop = `for (var kh = 0u; kh < params.KH; kh++) {
    for (var kw = 0u; kw < params.KW; kw++) {
      let tap = kh * params.KW + kw;
      ${J.map(
        (j) => `let y${j} = ih${j} + i32(kh * params.dh);
      let x${j} = iw${j} + i32(kw * params.dw);
      let v${j} = y${j} >= 0 && y${j} < i32(params.H) && x${j} >= 0 && x${j} < i32(params.W);
      let p${j} = select(xb${j}, xb${j} + u32(y${j}) * params.W + u32(x${j}), v${j});`,
      ).join('\n      ')}
      var wk = tap;
      var xc = 0u;
      for (var ci = 0u; ci < Cig; ci++) {
        ${J.map((j) => `let b${j} = select(0.0, f32(A[p${j} + xc]), v${j});`).join('\n        ')}
        ${
          vec
            ? [
                ...G.map((q) => `let bv${q} = vec4<f32>(${[0, 1, 2, 3].map((e) => `b${4 * q + e}`).join(', ')});`),
                ...Q.map((q) => `let al${q} = f32(B[wl${q} + wk]);`),
                ...I.map(
                  (i) => `let a${i} = vec4<f32>(${L ? `subgroupBroadcast(al${Math.floor(i / L)}, ${i % L}u)` : `f32(B[wb${i} + wk])`});`,
                ),
                ...I.flatMap((i) => G.map((q) => `acc${i}_${q} = fma(a${i}, bv${q}, acc${i}_${q});`)),
              ].join('\n        ')
            : `${I.map((i) => `let a${i} = f32(B[wb${i} + wk]);`).join('\n        ')}
        ${fma(
          (i) => `a${i}`,
          (j) => `b${j}`,
        )}`
        }
        wk += KK;
        xc += HW;
      }
    }
  }`;
    store = `${J.map(
      (j) => `if (c${j} < P) {
    ${I.map((i) => {
      const v = `${accOf(i, j)}${hasBias ? ` + f32(Cb[params.c_offset + co${i}])` : ''}`;
      return `if (row0 + ${i * WY}u < Cog) { O[params.o_offset + (n${j} * params.Co + co${i}) * OHW + r${j}] = ${activation === 'relu' ? `relu_f32(${v})` : v}; }`;
    }).join('\n    ')}
  }`,
    ).join('\n  ')}`;
  } else if (kind === 'dinput') {
    // A = dy, B = w. Columns: input pixels; rows: input channels of group g.
    setup = `let g = wid.z;
  let P = params.N * HW;
  ${J.map(
    (j) => `let c${j} = col0 + ${j * WX}u;
  let cc${j} = min(c${j}, P - 1u);
  let n${j} = cc${j} / HW;
  let r${j} = cc${j} % HW;
  let ih${j} = i32(r${j} / params.W) + i32(params.ph);
  let iw${j} = i32(r${j} % params.W) + i32(params.pw);
  let yb${j} = params.a_offset + (n${j} * params.Co + g * Cog) * OHW;`,
  ).join('\n  ')}
  ${I.map(
    (i) => `let ci${i} = g * Cig + min(row0 + ${i * WY}u, Cig - 1u);
  let wb${i} = params.b_offset + (g * Cog * Cig + (ci${i} - g * Cig)) * KK;`,
  ).join('\n  ')}`;
    loop = `for (var co = 0u; co < Cog; co++) {
    let yc = co * OHW;
    let wc = co * Cig * KK;
    for (var kh = 0u; kh < params.KH; kh++) {
      ${J.map(
        (j) => `let t${j} = ih${j} - i32(kh * params.dh);
      let tu${j} = u32(max(t${j}, 0));
      ${
        unitStride
          ? `let oh${j} = tu${j};
      let hv${j} = t${j} >= 0 && oh${j} < params.OH;`
          : `let oh${j} = tu${j} / params.sh;
      let hv${j} = t${j} >= 0 && tu${j} % params.sh == 0u && oh${j} < params.OH;`
      }
      let yr${j} = yb${j} + yc + oh${j} * params.OW;`,
      ).join('\n      ')}
      for (var kw = 0u; kw < params.KW; kw++) {
      ${J.map(
        (j) => `let s${j} = iw${j} - i32(kw * params.dw);
      let su${j} = u32(max(s${j}, 0));
      ${
        unitStride
          ? `let ow${j} = su${j};
      let v${j} = hv${j} && s${j} >= 0 && ow${j} < params.OW;`
          : `let ow${j} = su${j} / params.sw;
      let v${j} = hv${j} && s${j} >= 0 && su${j} % params.sw == 0u && ow${j} < params.OW;`
      }
      let b${j} = select(0.0, f32(A[select(0u, yr${j} + ow${j}, v${j})]), v${j});`,
      ).join('\n      ')}
      let wk = wc + kh * params.KW + kw;
      ${I.map((i) => `let a${i} = f32(B[wb${i} + wk]);`).join('\n      ')}
      ${fma(
        (i) => `a${i}`,
        (j) => `b${j}`,
      )}
      }
    }
  }`;
    store = `${J.map(
      (j) => `if (c${j} < P) {
    ${I.map((i) => `if (row0 + ${i * WY}u < Cig) { O[params.o_offset + (n${j} * params.C + ci${i}) * HW + r${j}] = acc${i}_${j}; }`).join('\n    ')}
  }`,
    ).join('\n  ')}`;
  } else {
    // A = x, B = dy. Columns: (ci, kh, kw) of the group; rows: output channels; z = split·groups + g.
    setup = `let g = wid.z % params.groups;
  let split = wid.z / params.groups;
  let P = Cig * KK;
  let rBegin = split * params.rowsPerSplit;
  let rEnd = min(rBegin + params.rowsPerSplit, params.N * params.OH);
  ${J.map(
    (j) => `let c${j} = col0 + ${j * WX}u;
  let cc${j} = min(c${j}, P - 1u);
  let kk${j} = cc${j} % KK;
  let xb${j} = params.a_offset + (g * Cig + cc${j} / KK) * HW;
  let offh${j} = i32((kk${j} / params.KW) * params.dh) - i32(params.ph);
  let offw${j} = i32((kk${j} % params.KW) * params.dw) - i32(params.pw);`,
  ).join('\n  ')}
  ${I.map(
    (i) => `let co${i} = g * Cog + min(row0 + ${i * WY}u, Cog - 1u);
  let yb${i} = params.b_offset + co${i} * OHW;`,
  ).join('\n  ')}`;
    loop = `for (var rr = rBegin; rr < rEnd; rr++) {
    let n = rr / params.OH;
    let oh = rr % params.OH;
    let ihBase = i32(oh * params.sh);
    ${J.map(
      (j) => `let y${j} = ihBase + offh${j};
    let hv${j} = y${j} >= 0 && y${j} < i32(params.H);
    let xr${j} = xb${j} + n * params.C * HW + u32(max(y${j}, 0)) * params.W;`,
    ).join('\n    ')}
    ${I.map((i) => `let dr${i} = yb${i} + n * params.Co * OHW + oh * params.OW;`).join('\n    ')}
    for (var ow = 0u; ow < params.OW; ow++) {
      let iwBase = i32(ow * params.sw);
      ${J.map(
        (j) => `let x${j} = iwBase + offw${j};
      let v${j} = hv${j} && x${j} >= 0 && x${j} < i32(params.W);
      let b${j} = select(0.0, f32(A[select(0u, xr${j} + u32(x${j}), v${j})]), v${j});`,
      ).join('\n      ')}
      ${I.map((i) => `let a${i} = f32(B[dr${i} + ow]);`).join('\n      ')}
      ${fma(
        (i) => `a${i}`,
        (j) => `b${j}`,
      )}
    }
  }`;
    store = `let sb = params.o_offset + split * params.Co * P;
  ${J.map(
    (j) => `if (c${j} < P) {
    ${I.map((i) => `if (row0 + ${i * WY}u < Cog) { O[sb + co${i} * P + cc${j}] = acc${i}_${j}; }`).join('\n    ')}
  }`,
  ).join('\n  ')}`;
  }
  return `${enables(inT)}${L ? 'enable subgroups;\n' : ''}${decl}
${activation === 'none' ? '' : MATH_WGSL}

@compute @workgroup_size(${WX}, ${WY}, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>${L ? ', @builtin(subgroup_invocation_id) lane: u32' : ''}) {
  ${common}
  let col0 = wid.x * ${WX * RN}u + lid.x;
  let row0 = wid.y * ${WY * RM}u + lid.y;
  ${setup}
  ${accs}
  ${loop}
  ${store}
}`;
}
