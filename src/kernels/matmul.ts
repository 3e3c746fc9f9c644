/**
 * Batched matrix products with a fused epilogue: out[b] = act(alpha · A[b]·B[b] + bias) + residual
 * (+ out when accumulating). A and B are arbitrary strided views, so a transposed operand is a
 * view with swapped strides (backward passes use exactly that: dX = dY·Wᵀ, dW = Xᵀ·dY) and a
 * broadcast batch dim has stride 0. Accumulation is always f32; inputs may be f32 or f16.
 *
 * Three kernels, chosen per adapter by `chooseMatmulConfig` (measurements: bench/results/):
 *  - 'register': no workgroup memory; each thread keeps an RM×RN block of outputs in registers
 *    and streams A and B from global memory, with vec4 loads along whichever dim of each operand
 *    is contiguous (specialised per call; or scalar loads, which suit lavapipe better).
 *  - 'shared': TM×TK and TK×TN tiles staged in workgroup memory (k-major, vec4 rows), each thread
 *    owns an interleaved RM×RN block. Meant for discrete GPUs.
 *  - 'splitk': for x·Wᵀ (both operands contiguous along K) with fixed-size subgroups: a subgroup
 *    shares one output block and splits K across its lanes (lavapipe: 2× the register kernel).
 * Edges need no padding: loads clamp their row/column (or zero-fill, in the tiled kernel) and
 * stores are guarded, so M, N, K need not be multiples of anything. The file holds the three WGSL
 * generators next to the keys that name them, hence its length.
 */
import { runtime, type AdapterSummary } from '../gpu/runtime.js';
import type { DType } from '../core/dtype.js';
import { broadcastShapes, fmt, sizeOf } from '../core/shape.js';
import { enables, Params, paramsDecl } from './common.js';
import { broadcastStrides, coalesce } from './elementwise.js';
import type { View } from './view.js';

export type MatmulActivation = 'none' | 'gelu' | 'gelu_tanh' | 'silu' | 'relu';

/** Smallest K for which the adapter's K-contiguous (split-K) kernel is chosen automatically. */
export const SPLITK_MIN_K = 768;

export interface RegisterConfig {
  kind: 'register';
  /** Threads per workgroup along N (x) and M (y). */
  wgX: number;
  wgY: number;
  /** Outputs per thread along M and N (both multiples of 4). */
  rm: number;
  rn: number;
  /** Scalar loads and a K loop of step 1 (smaller code) instead of vec4 loads and step 4. */
  scalar?: boolean;
}

export interface SharedConfig {
  kind: 'shared';
  wgX: number;
  wgY: number;
  /** Outputs per thread (multiples of 4); the tile is (wgY·rm) × (wgX·rn). */
  rm: number;
  rn: number;
  /** K-depth of a staged tile. */
  tk: number;
}

/**
 * For products whose operands are both contiguous along K (x·Wᵀ): the `lanes` invocations of one
 * subgroup share an rm×rn output block and split K between them (lane l takes k ≡ l mod lanes),
 * so neighbouring lanes read neighbouring addresses of the same rows; subgroupAdd combines them.
 * Needs the 'subgroups' feature with a fixed subgroup size equal to `lanes`.
 */
export interface SplitKConfig {
  kind: 'splitk';
  lanes: number;
  /** Output blocks (subgroups) per workgroup, side by side along N. */
  wgY: number;
  rm: number;
  rn: number;
}

export type MatmulConfig = RegisterConfig | SharedConfig | SplitKConfig;

/** What the adapter table holds: a general kernel and, optionally, one for K-contiguous operands. */
export interface AdapterMatmulConfigs {
  general: RegisterConfig | SharedConfig;
  kContiguous?: SplitKConfig;
}

export interface MatmulOptions {
  /** [N] (or [1, …, N]) added along columns. */
  bias?: View;
  /** Applied after the bias. 'gelu' is the exact erf form, 'gelu_tanh' PyTorch's approximate='tanh'. */
  activation?: MatmulActivation;
  /** Broadcastable to out's logical shape [...batch, M, N]; added after the activation. */
  residual?: View;
  /** Scales A·B only (before bias). Default 1. */
  alpha?: number;
  /** out += result instead of out = result (gradient accumulation). */
  accumulate?: boolean;
  /** Overrides the per-adapter choice (benchmarks, tests of both kernels). */
  config?: MatmulConfig;
}

/**
 * Per-adapter table, first match wins. The lavapipe row is measured (bench/results/
 * lavapipe-matmul.md); the NVIDIA and default rows are starting points not yet measured with
 * these kernels.
 *
 * Why lavapipe differs: llvmpipe runs 8 invocations as the lanes of one SIMD vector, and every
 * storage-buffer load whose address varies across lanes becomes 8 bounds-checked scalar loads, a
 * vec4 load 32 of them. So what counts is loaded elements per FMA (big per-thread blocks: 12×16)
 * and code size (scalar loads with a K step of 1 compiled smaller and ran faster than vec4 loads
 * with a step of 4). Workgroup memory has no benefit there and costs barriers (coroutines).
 */
const CONFIG_TABLE: { name: string; match: (s: string) => boolean; configs: AdapterMatmulConfigs }[] = [
  {
    name: 'lavapipe/llvmpipe',
    match: (s) => /llvmpipe|lavapipe/.test(s),
    configs: {
      general: { kind: 'register', wgX: 8, wgY: 4, rm: 12, rn: 16, scalar: true },
      kContiguous: { kind: 'splitk', lanes: 8, wgY: 4, rm: 12, rn: 16 },
    },
  },
  { name: 'swiftshader', match: (s) => /swiftshader/.test(s), configs: { general: { kind: 'register', wgX: 8, wgY: 4, rm: 12, rn: 16, scalar: true } } },
  // 128×128 tiles, 8×8 outputs per thread, 256 threads, 16 KiB of workgroup memory.
  { name: 'nvidia', match: (s) => /nvidia|geforce|rtx|h100|h200|a100/.test(s), configs: { general: { kind: 'shared', wgX: 16, wgY: 16, rm: 8, rn: 8, tk: 16 } } },
];
const DEFAULT_CONFIGS: AdapterMatmulConfigs = { general: { kind: 'shared', wgX: 16, wgY: 16, rm: 4, rn: 4, tk: 16 } };

/** The kernel configurations for an adapter (matched on its vendor/architecture/device/description). */
export function chooseMatmulConfig(info: Partial<Pick<AdapterSummary, 'vendor' | 'architecture' | 'device' | 'description'>>): AdapterMatmulConfigs {
  const s = [info.vendor, info.architecture, info.device, info.description].join(' ').toLowerCase();
  return CONFIG_TABLE.find((row) => row.match(s))?.configs ?? DEFAULT_CONFIGS;
}

let chosen: { rt: object; configs: AdapterMatmulConfigs } | null = null;
function adapterConfigs(): AdapterMatmulConfigs {
  const rt = runtime();
  if (chosen?.rt !== rt) chosen = { rt, configs: chooseMatmulConfig(rt.adapterSummary) };
  return chosen.configs;
}

/** Whether the split-K kernel can run: subgroups of exactly `lanes` invocations. */
function splitKUsable(c: SplitKConfig): boolean {
  const rt = runtime();
  const info = rt.adapter.info as unknown as { subgroupMinSize?: number; subgroupMaxSize?: number };
  return rt.features.has('subgroups') && info.subgroupMinSize === c.lanes && info.subgroupMaxSize === c.lanes;
}

const MAX_BATCH_RANK = 4;

// Uniform layout (u32 words).
const W = {
  M: 0, N: 1, K: 2, batchStart: 3, sAM: 4, sAK: 5, sBK: 6, sBN: 7, sOM: 8, sON: 9, sBias: 10, sRM: 11,
  sRN: 12, alpha: 13, aOff: 14, bOff: 15, oOff: 16, biasOff: 17, rOff: 18, sAK4: 19,
  bShape: 20, aBS: 24, bBS: 28, oBS: 32, rBS: 36, sBK4: 40,
} as const;
const PARAM_VEC4S = 11;

/** How an operand is read: vec4 along K, vec4 along its other dim (M of A, N of B), or scalars. */
type LoadMode = 'k4' | 'o4' | 'k1' | 'o1' | 's';

interface Plan {
  M: number; N: number; K: number;
  batchShape: number[];
  aMode: LoadMode; bMode: LoadMode;
  params: Params;
}

function fail(a: View, b: View, why: string): never {
  throw new RangeError(`matmul: shapes ${fmt(a.shape)} and ${fmt(b.shape)} ${why}`);
}

function stripLeadingOnes(s: readonly number[]): number[] {
  let i = 0;
  while (i < s.length && s[i] === 1) i++;
  return s.slice(i);
}

/** Everything a config contributes to the generated WGSL. */
function configKey(c: MatmulConfig): string {
  switch (c.kind) {
    case 'register':
      return `reg${c.wgX}x${c.wgY}r${c.rm}x${c.rn}${c.scalar ? 's' : 'v'}`;
    case 'shared':
      return `sh${c.wgX}x${c.wgY}r${c.rm}x${c.rn}k${c.tk}`;
    case 'splitk':
      return `sk${c.lanes}x${c.wgY}r${c.rm}x${c.rn}`;
  }
}

/** out[b] = epilogue(A[b] · B[b]); a: [..., M, K], b: [..., K, N]; out [...batch, M, N] (any strides). */
export function matmulInto(a: View, b: View, out: View, opts: MatmulOptions = {}): void {
  if (a.shape.length < 2 || b.shape.length < 2) fail(a, b, 'need rank >= 2 ([..., M, K] and [..., K, N])');
  const [M, K] = a.shape.slice(-2);
  const [K2, N] = b.shape.slice(-2);
  if (K !== K2) fail(a, b, `have different inner dims (K = ${K} vs ${K2})`);
  let batch: number[];
  try {
    batch = stripLeadingOnes(broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2), 'matmul'));
  } catch {
    fail(a, b, 'have batch dims that cannot be broadcast together');
  }
  const oBatch = out.shape.slice(0, -2);
  if (out.shape.length < 2 || out.shape[out.shape.length - 2] !== M || out.shape[out.shape.length - 1] !== N ||
      fmt(stripLeadingOnes(oBatch)) !== fmt(batch)) {
    fail(a, b, `give [${[...batch, M, N].join(', ')}], but out has shape ${fmt(out.shape)}`);
  }
  for (const v of [a, b]) if (v.dtype !== 'f32' && v.dtype !== 'f16') throw new TypeError(`matmul: inputs must be f32 or f16, got ${v.dtype}`);
  if (out.dtype !== 'f32' && out.dtype !== 'f16') throw new TypeError(`matmul: out must be f32 or f16, got ${out.dtype}`);
  if (sizeOf(out.shape) === 0) return;

  let accumulate = opts.accumulate ?? false;
  let residual = opts.residual;
  for (const [name, v] of [['a', a], ['b', b], ['bias', opts.bias]] as const) {
    if (v && v.buffer === out.buffer) throw new RangeError(`matmul: ${name} shares its buffer with out; write into a fresh buffer instead`);
  }
  if (residual && residual.buffer === out.buffer) {
    // y = f(x·W) + y in place is accumulation; any other overlap would race.
    const same = residual.offset === out.offset && fmt(residual.shape) === fmt(out.shape) && fmt(residual.strides) === fmt(out.strides);
    if (!same || accumulate) throw new RangeError('matmul: residual overlaps out; only residual === out (without accumulate) is supported');
    residual = undefined;
    accumulate = true;
  }
  const bias = opts.bias;
  if (bias && (bias.shape[bias.shape.length - 1] !== N || sizeOf(bias.shape) !== N)) {
    throw new RangeError(`matmul: bias must have shape [${N}], got ${fmt(bias.shape)}`);
  }
  const logical = [...oBatch, M, N];
  if (residual) {
    const rs = residual.shape;
    const ok = rs.length <= logical.length && rs.every((d, i) => d === 1 || d === logical[logical.length - rs.length + i]);
    if (!ok) throw new RangeError(`matmul: residual of shape ${fmt(rs)} does not broadcast to the output shape ${fmt(logical)}`);
  }

  // Batch strides over out's batch dims; size-1 dims of M/N/K get stride 0 (they never move).
  const bview = (v: View) => ({ shape: v.shape.slice(0, -2), strides: v.strides.slice(0, -2) });
  const strip = (v: { shape: number[]; strides: number[] }) => {
    const n = v.shape.length - Math.min(v.shape.length, oBatch.length);
    return { shape: v.shape.slice(n), strides: v.strides.slice(n) };
  };
  const batchStrides = [
    broadcastStrides(strip(bview(a)), oBatch),
    broadcastStrides(strip(bview(b)), oBatch),
    out.strides.slice(0, -2),
    residual ? broadcastStrides(residual, logical).slice(0, -2) : oBatch.map(() => 0),
  ];
  const merged = coalesce(oBatch, batchStrides);
  const ms = (v: View, d: number) => (v.shape[v.shape.length + d] === 1 ? 0 : v.strides[v.strides.length + d]);
  const rStr = residual ? broadcastStrides(residual, logical).slice(-2) : [0, 0];
  const m = {
    sAM: ms(a, -2), sAK: ms(a, -1), sBK: ms(b, -2), sBN: ms(b, -1), sOM: ms(out, -2), sON: ms(out, -1),
  };
  const vecOk = (v: View, bs: number[], ...strides: number[]) => v.offset % 4 === 0 && bs.every((s) => s % 4 === 0) && strides.every((s) => s % 4 === 0);
  let aMode: LoadMode =
    m.sAK === 1 && K % 4 === 0 && vecOk(a, merged.strides[0], m.sAM) ? 'k4'
    : m.sAM === 1 && M % 4 === 0 && vecOk(a, merged.strides[0], m.sAK) ? 'o4'
    : m.sAK === 1 ? 'k1' : m.sAM === 1 ? 'o1' : 's';
  let bMode: LoadMode =
    m.sBN === 1 && N % 4 === 0 && vecOk(b, merged.strides[1], m.sBK) ? 'o4'
    : m.sBK === 1 && K % 4 === 0 && vecOk(b, merged.strides[1], m.sBN) ? 'k4'
    : m.sBN === 1 ? 'o1' : m.sBK === 1 ? 'k1' : 's';
  const kContiguous = (aMode === 'k1' || aMode === 'k4') && (bMode === 'k1' || bMode === 'k4');
  const table = adapterConfigs();
  // Split-K pays off only for long K (rows of B far apart; measured at K = 1024). At DiT-demo
  // sizes (K = 96, M = 1024, N = 288) it ran at 5.4 GFLOP/s against 11–12 for the register kernel.
  const longK = K >= SPLITK_MIN_K;
  let cfg: MatmulConfig = opts.config ?? (kContiguous && longK && table.kContiguous ? table.kContiguous : table.general);
  if (cfg.kind === 'splitk' && !(kContiguous && splitKUsable(cfg))) cfg = table.general;
  if ((cfg.kind === 'register' && cfg.scalar) || cfg.kind === 'splitk') {
    if (aMode === 'k4') aMode = 'k1';
    if (aMode === 'o4') aMode = 'o1';
    if (bMode === 'k4') bMode = 'k1';
    if (bMode === 'o4') bMode = 'o1';
  }
  const act = opts.activation ?? 'none';

  const dispatchRange = (shape: number[], strides: number[][], offs: number[]): void => {
    // Batch dims beyond what the kernel decodes are peeled off here, one dispatch per index.
    if (shape.length > MAX_BATCH_RANK) {
      for (let i = 0; i < shape[0]; i++) dispatchRange(shape.slice(1), strides.map((s) => s.slice(1)), offs.map((o, k) => o + i * strides[k][0]));
      return;
    }
    const nBatch = sizeOf(shape);
    const maxZ = runtime().limits.maxComputeWorkgroupsPerDimension;
    for (let start = 0; start < nBatch; start += maxZ) {
      const p = new Params()
        .u(M, N, K, start, m.sAM, m.sAK, m.sBK, m.sBN, m.sOM, m.sON, bias ? bias.strides[bias.strides.length - 1] : 0, rStr[0])
        .u(rStr[1]).f(opts.alpha ?? 1).u(offs[0], offs[1], offs[2], bias?.offset ?? 0, offs[3], Math.trunc(m.sAK / 4));
      p.u(...shape).pad(W.aBS);
      for (let k = 0; k < 4; k++) p.u(...strides[k]).pad(W.aBS + 4 * (k + 1));
      p.u(Math.trunc(m.sBK / 4));
      const plan: Plan = { M, N, K, batchShape: shape, aMode, bMode, params: p };
      launch(plan, a, b, out, bias, residual, cfg, act, accumulate, Math.min(maxZ, nBatch - start));
    }
  };
  dispatchRange(merged.shape, merged.strides, [a.offset, b.offset, out.offset, residual?.offset ?? 0]);
}

function launch(
  plan: Plan, a: View, b: View, out: View, bias: View | undefined, residual: View | undefined,
  cfg: MatmulConfig, act: MatmulActivation, accumulate: boolean, zGroups: number,
): void {
  const spec: KernelSpec = {
    cfg, aMode: plan.aMode, bMode: plan.bMode, aT: a.dtype, bT: b.dtype, oT: out.dtype,
    biasT: bias?.dtype, resT: residual?.dtype, act, accumulate, batchRank: plan.batchShape.length,
  };
  if (cfg.kind !== 'splitk' && (cfg.rn % 4 !== 0 || cfg.rm % 4 !== 0)) throw new RangeError(`matmul: invalid config ${JSON.stringify(cfg)}`);
  const key = `matmul|${configKey(cfg)}|A${spec.aMode}:${spec.aT}|B${spec.bMode}:${spec.bT}|O${spec.oT}|bias:${spec.biasT ?? '-'}|res:${spec.resT ?? '-'}|${act}|${accumulate ? 'acc' : 'set'}|br${spec.batchRank}`;
  const buffers = [a.buffer, b.buffer, ...(bias ? [bias.buffer] : []), ...(residual ? [residual.buffer] : []), out.buffer];
  runtime().dispatch(
    { key, bindings: [...buffers.slice(0, -1).map(() => 'read' as const), 'write', 'uniform'], wgsl: () => (cfg.kind === 'register' ? registerSource(spec, cfg) : cfg.kind === 'shared' ? sharedSource(spec, cfg) : splitKSource(spec, cfg)) },
    buffers,
    cfg.kind === 'splitk'
      ? [Math.ceil(plan.N / (cfg.wgY * cfg.rn)), Math.ceil(plan.M / cfg.rm), zGroups]
      : [Math.ceil(plan.N / (cfg.wgX * cfg.rn)), Math.ceil(plan.M / (cfg.wgY * cfg.rm)), zGroups],
    plan.params.build(),
  );
}

interface KernelSpec {
  cfg: MatmulConfig;
  aMode: LoadMode; bMode: LoadMode;
  aT: DType; bT: DType; oT: DType; biasT?: DType; resT?: DType;
  act: MatmulActivation; accumulate: boolean; batchRank: number;
}

/**
 * erf with |error| < 1e-7 in f32 (a fit of our own: erf(x)/x − 1 as a degree-6 polynomial in x²
 * below 0.84375, and x·erfc(x)·e^{x²} as a degree-10 polynomial in 1/x above, with e^{−x²} split
 * as e^{−h²}·e^{−(x−h)(x+h)} so the squaring does not lose bits). `mm_erfc_big` returns erfc(|x|)
 * for |x| ≥ 0.84375 directly, which keeps GELU's negative tail free of cancellation.
 */
const ERF_WGSL = `
fn mm_erf_small(x: f32) -> f32 {
  let s = x * x;
  var q = 8.897524094e-05;
  q = q * s - 8.256813744e-04; q = q * s + 5.210256670e-03; q = q * s - 2.686281875e-02;
  q = q * s + 1.128375232e-01; q = q * s - 3.761263788e-01; q = q * s + 1.283791661e-01;
  return x + x * q;
}
fn mm_erfc_big(x: f32) -> f32 {
  let a = min(abs(x), 4.0);
  let u = 1.0 / a;
  let t = (u - 7.175925970e-01) * 2.138613939e+00;
  var r = 9.342276826e-06;
  r = r * t - 2.994636270e-05; r = r * t + 4.023672227e-05; r = r * t - 9.420445167e-06;
  r = r * t - 1.882883516e-04; r = r * t + 9.189464618e-04; r = r * t - 2.717623720e-03;
  r = r * t + 4.830264952e-03; r = r * t + 3.301318036e-03; r = r * t - 7.958472520e-02;
  r = r * t + 4.736779630e-01;
  let h = bitcast<f32>(bitcast<u32>(a) & 0xfffff000u);
  let e = exp(-h * h) * exp(-(a - h) * (a + h));
  return select(e, exp(-x * x), abs(x) > 4.0) * r * u;
}
fn mm_erf(x: f32) -> f32 {
  if (abs(x) < 0.84375) { return mm_erf_small(x); }
  return sign(x) * (1.0 - mm_erfc_big(x));
}
fn mm_gelu(x: f32) -> f32 {
  // 0.5x + 0.5x·erf(z) rather than 0.5x·(1 + erf(z)): rounding 1 + erf would cost ~1e-7.
  let z = x * 0.7071067811865476;
  let h = 0.5 * x;
  if (abs(z) < 0.84375) { return h + h * mm_erf_small(z); }
  let hc = h * mm_erfc_big(z);
  return select(hc, x - hc, z > 0.0);
}`;

/** Activations as WGSL; sigmoid forms (x / (1 + e^{−y})) never produce inf/inf. */
const ACT_WGSL: Record<MatmulActivation, string> = {
  none: 'fn mm_act(x: f32) -> f32 { return x; }',
  relu: 'fn mm_act(x: f32) -> f32 { return max(x, 0.0); }',
  silu: 'fn mm_act(x: f32) -> f32 { return x / (1.0 + exp(-x)); }',
  // 0.5·(1 + tanh(u)) = sigmoid(2u), u = √(2/π)(x + 0.044715x³).
  gelu_tanh: 'fn mm_act(x: f32) -> f32 { return x / (1.0 + exp(-1.5957691216057308 * (x + 0.044715 * x * x * x))); }',
  gelu: `${ERF_WGSL}\nfn mm_act(x: f32) -> f32 { return mm_gelu(x); }`,
};

const pu = (w: number) => `pu(${w}u)`;
const vecT = (t: DType, v: boolean) => (v ? `vec4<${t}>` : t);

/** Bindings, params, activation and the epilogue shared by both kernels. */
function preamble(s: KernelSpec): string {
  const vecA = s.aMode === 'k4' || s.aMode === 'o4';
  const vecB = s.bMode === 'k4' || s.bMode === 'o4';
  const dtypes = [s.aT, s.bT, s.oT, ...(s.biasT ? [s.biasT] : []), ...(s.resT ? [s.resT] : [])];
  let bind = 0;
  const decl = (name: string, type: string, rw = false) => `@group(0) @binding(${bind++}) var<storage, ${rw ? 'read_write' : 'read'}> ${name}: array<${type}>;`;
  const lines = [decl('A', vecT(s.aT, vecA)), decl('B', vecT(s.bT, vecB))];
  if (s.biasT) lines.push(decl('BIAS', s.biasT));
  if (s.resT) lines.push(decl('RES', s.resT));
  lines.push(decl('O', s.oT, true));
  return `${enables(dtypes)}${lines.join('\n')}
${paramsDecl(bind, PARAM_VEC4S)}
${ACT_WGSL[s.act]}
fn mm_store(acc: f32, col: u32, ridx: u32, oidx: u32) {
  var v = acc * pf(${W.alpha}u);
  ${s.biasT ? `v += f32(BIAS[${pu(W.biasOff)} + col * ${pu(W.sBias)}]);` : ''}
  v = mm_act(v);
  ${s.resT ? 'v += f32(RES[ridx]);' : ''}
  ${s.accumulate ? 'v += f32(O[oidx]);' : ''}
  O[oidx] = ${s.oT}(v);
}`;
}

/** Element offsets of this workgroup's batch entry in A, B, out and the residual. */
function batchDecode(rank: number, z: string): string {
  const lines = [`var aB = ${pu(W.aOff)}; var bB = ${pu(W.bOff)}; var oB = ${pu(W.oOff)}; var rB = ${pu(W.rOff)};`];
  if (rank > 0) lines.push(`var rem = ${z} + ${pu(W.batchStart)};`);
  for (let d = rank - 1; d >= 0; d--) {
    lines.push(`{ let sz = ${pu(W.bShape + d)}; let c = rem % sz; rem = rem / sz;
    aB += c * ${pu(W.aBS + d)}; bB += c * ${pu(W.bBS + d)}; oB += c * ${pu(W.oBS + d)}; rB += c * ${pu(W.rBS + d)}; }`);
  }
  return lines.join('\n  ');
}

/**
 * Guarded epilogue stores of the RM×RN accumulators (acc{r}_{g}, vec4 over columns 4g..4g+3).
 * Written as loops over a private copy, not unrolled: the epilogue (GELU especially) is large,
 * and unrolling it per output multiplied shader compile time on lavapipe for no runtime gain.
 */
function stores(RM: number, RN: number, row: (r: string) => string, col: (j: string) => string): string {
  const G = RN / 4;
  const accs: string[] = [];
  for (let r = 0; r < RM; r++) for (let g = 0; g < G; g++) accs.push(`acc${r}_${g}`);
  return `var accs = array<vec4<f32>, ${RM * G}>(${accs.join(', ')});
  ${storeLoop(RM, RN, row, col, (r, j) => `accs[${r} * ${G}u + ${j} / 4u][${j} % 4u]`)}`;
}

function storeLoop(RM: number, RN: number, row: (r: string) => string, col: (j: string) => string, value: (r: string, j: string) => string, first = '0u', step = '1u'): string {
  return `for (var i = ${first}; i < ${RM * RN}u; i += ${step}) {
    let r = i / ${RN}u; let j = i % ${RN}u;
    let row = ${row('r')}; let col = ${col('j')};
    if (row < M && col < N) {
      mm_store(${value('r', 'j')}, col, rB + row * ${pu(W.sRM)} + col * ${pu(W.sRN)}, oB + row * ${pu(W.sOM)} + col * ${pu(W.sON)});
    }
  }`;
}

const comp = (j: number) => 'xyzw'[j];

/** Register-blocked kernel: thread (x, y) computes rows y·RM.., cols x·RN.. with vec4 accumulators. */
function registerSource(s: KernelSpec, c: RegisterConfig): string {
  const { rm: RM, rn: RN } = c;
  const G = RN / 4;
  const body: string[] = [];
  const setup: string[] = [];
  const hasK4 = s.aMode === 'k4' || s.bMode === 'k4';
  // A: value(r, kk) for rows r, k-offset kk within a step.
  let aLoad: (kk: number, k: string) => string[];
  let aVal: (r: number, kk: number) => string;
  if (s.aMode === 'k4') {
    for (let r = 0; r < RM; r++) setup.push(`let ar${r} = (aB + min(row0 + ${r}u, M - 1u) * ${pu(W.sAM)}) / 4u;`);
    aLoad = (_kk, k) => (_kk === 0 ? Array.from({ length: RM }, (_, r) => `let a${r} = vec4<f32>(A[ar${r} + (${k} >> 2u)]);`) : []);
    aVal = (r, kk) => `a${r}.${comp(kk)}`;
  } else if (s.aMode === 'o4') {
    for (let g = 0; g < RM / 4; g++) setup.push(`let ag${g} = (aB + min(row0 + ${4 * g}u, M - 4u)) / 4u;`);
    aLoad = (kk, k) => Array.from({ length: RM / 4 }, (_, g) => `let a${kk}_${g} = vec4<f32>(A[ag${g} + (${k} + ${kk}u) * ${pu(W.sAK4)}]);`);
    aVal = (r, kk) => `a${kk}_${r >> 2}.${comp(r & 3)}`;
  } else {
    for (let r = 0; r < RM; r++) setup.push(`let ar${r} = aB + min(row0 + ${r}u, M - 1u) * ${pu(W.sAM)};`);
    const sk = s.aMode === 'k1' ? '' : ` * ${pu(W.sAK)}`;
    aLoad = (kk, k) => Array.from({ length: RM }, (_, r) => `let a${kk}_${r} = f32(A[ar${r} + (${k} + ${kk}u)${sk}]);`);
    aVal = (r, kk) => `a${kk}_${r}`;
  }
  // B: row vector (kk, g) = B[k + kk, cols 4g..4g+3].
  let bLoad: (kk: number, k: string) => string[];
  let bRow: (kk: number, g: number) => string;
  if (s.bMode === 'o4') {
    for (let g = 0; g < G; g++) setup.push(`let bg${g} = (bB + min(col0 + ${4 * g}u, N - 4u)) / 4u;`);
    bLoad = (kk, k) => Array.from({ length: G }, (_, g) => `let b${kk}_${g} = vec4<f32>(B[bg${g} + (${k} + ${kk}u) * ${pu(W.sBK4)}]);`);
    bRow = (kk, g) => `b${kk}_${g}`;
  } else if (s.bMode === 'k4') {
    for (let j = 0; j < RN; j++) setup.push(`let bc${j} = (bB + min(col0 + ${j}u, N - 1u) * ${pu(W.sBN)}) / 4u;`);
    bLoad = (kk, k) => (kk === 0 ? Array.from({ length: RN }, (_, j) => `let b${j} = vec4<f32>(B[bc${j} + (${k} >> 2u)]);`) : []);
    bRow = (kk, g) => `vec4<f32>(${[0, 1, 2, 3].map((j) => `b${4 * g + j}.${comp(kk)}`).join(', ')})`;
  } else {
    for (let j = 0; j < RN; j++) setup.push(`let bc${j} = bB + min(col0 + ${j}u, N - 1u) * ${pu(W.sBN)};`);
    const sk = s.bMode === 'k1' ? '' : ` * ${pu(W.sBK)}`;
    bLoad = (kk, k) => Array.from({ length: RN }, (_, j) => `let b${kk}_${j} = f32(B[bc${j} + (${k} + ${kk}u)${sk}]);`);
    bRow = (kk, g) => `vec4<f32>(${[0, 1, 2, 3].map((j) => `b${kk}_${4 * g + j}`).join(', ')})`;
  }
  const step = (n: number) => {
    const lines: string[] = [];
    for (let kk = 0; kk < n; kk++) lines.push(...aLoad(kk, 'k'), ...bLoad(kk, 'k'));
    for (let kk = 0; kk < n; kk++) for (let r = 0; r < RM; r++) for (let g = 0; g < G; g++) lines.push(`acc${r}_${g} = fma(vec4<f32>(${aVal(r, kk)}), ${bRow(kk, g)}, acc${r}_${g});`);
    return lines.join('\n    ');
  };
  if (!c.scalar) body.push(`for (; k + 4u <= K; k += 4u) {\n    ${step(4)}\n  }`);
  // 'k4' modes imply K % 4 == 0, so only the other modes need a tail.
  if (!hasK4) body.push(`for (; k < K; k += 1u) {\n    ${step(1)}\n  }`);
  const accs = [];
  for (let r = 0; r < RM; r++) for (let g = 0; g < G; g++) accs.push(`var acc${r}_${g} = vec4<f32>(0.0);`);
  return `${preamble(s)}
@compute @workgroup_size(${c.wgX}, ${c.wgY}, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let M = ${pu(W.M)}; let N = ${pu(W.N)}; let K = ${pu(W.K)};
  let row0 = gid.y * ${RM}u; let col0 = gid.x * ${RN}u;
  if (row0 >= M || col0 >= N) { return; }
  ${batchDecode(s.batchRank, 'gid.z')}
  ${setup.join('\n  ')}
  ${accs.join('\n  ')}
  var k = 0u;
  ${body.join('\n  ')}
  ${stores(RM, RN, (r) => `row0 + ${r}`, (j) => `col0 + ${j}`)}
}`;
}

/**
 * Stages a TO×TK tile of an operand (TO along M for A, N for B) into workgroup memory laid out
 * k-major with vec4 rows along TO: S[kk·TO/4 + o/4][o%4]. Threads walk the operand's contiguous
 * dim so that neighbouring threads read neighbouring addresses; out-of-range elements are zero.
 */
function tileLoader(S: string, X: string, mode: LoadMode, TO: number, TK: number, T: number, o0: string, O: string, base: string, sO: number, sK: number, sK4?: number): string {
  const vec = mode === 'k4' || mode === 'o4';
  const w = vec ? 4 : 1;
  const alongK = mode === 'k4' || mode === 'k1' || mode === 's';
  const groups = (TO * TK) / w;
  const lines: string[] = [];
  for (let i = 0; i < groups / T; i++) {
    const e = `(tid + ${i * T}u)`;
    const [o, kk] = alongK ? [`(${e} / ${TK / w}u)`, `(${e} % ${TK / w}u) * ${w}u`] : [`(${e} % ${TO / w}u) * ${w}u`, `(${e} / ${TO / w}u)`];
    lines.push(`{ let o = ${o}; let kk = ${kk}; let go = ${o0} + o; let gk = k0 + kk;`);
    if (mode === 'k4') {
      lines.push(`  let v = select(vec4<f32>(0.0), vec4<f32>(${X}[(${base} + min(go, ${O} - 1u) * ${pu(sO)}) / 4u + min(gk, K - 4u) / 4u]), go < ${O} && gk < K);`);
      for (let j = 0; j < 4; j++) lines.push(`  ${S}[(kk + ${j}u) * ${TO / 4}u + o / 4u][o % 4u] = v.${comp(j)};`);
    } else if (mode === 'o4') {
      lines.push(`  ${S}[kk * ${TO / 4}u + o / 4u] = select(vec4<f32>(0.0), vec4<f32>(${X}[(${base} + min(go, ${O} - 4u)) / 4u + min(gk, K - 1u) * ${pu(sK4!)}]), go < ${O} && gk < K);`);
    } else {
      const so = mode === 'o1' ? '' : ` * ${pu(sO)}`;
      const sk = mode === 'k1' ? '' : ` * ${pu(sK)}`;
      lines.push(`  ${S}[kk * ${TO / 4}u + o / 4u][o % 4u] = select(0.0, f32(${X}[${base} + min(go, ${O} - 1u)${so} + min(gk, K - 1u)${sk}]), go < ${O} && gk < K);`);
    }
    lines.push('}');
  }
  return lines.join('\n    ');
}

/** Workgroup-memory tiled kernel; thread (x, y) owns row groups y + i·wgY and column groups x + j·wgX. */
function sharedSource(s: KernelSpec, c: SharedConfig): string {
  const { wgX, wgY, rm: RM, rn: RN, tk: TK } = c;
  const TM = wgY * RM, TN = wgX * RN, T = wgX * wgY;
  for (const [mode, TO] of [[s.aMode, TM], [s.bMode, TN]] as const) {
    const w = mode === 'k4' || mode === 'o4' ? 4 : 1;
    if (((TO * TK) / w) % T !== 0 || TK % 4 !== 0) throw new RangeError(`matmul: shared config ${JSON.stringify(c)} does not tile evenly`);
  }
  const GM = RM / 4, GN = RN / 4;
  const accs: string[] = [];
  const fmas: string[] = [];
  for (let g = 0; g < GM; g++) fmas.push(`let a${g} = As[kk * ${TM / 4}u + lid.y + ${g * wgY}u];`);
  for (let g = 0; g < GN; g++) fmas.push(`let b${g} = Bs[kk * ${TN / 4}u + lid.x + ${g * wgX}u];`);
  for (let r = 0; r < RM; r++) {
    for (let g = 0; g < GN; g++) {
      accs.push(`var acc${r}_${g} = vec4<f32>(0.0);`);
      fmas.push(`acc${r}_${g} = fma(vec4<f32>(a${r >> 2}.${comp(r & 3)}), b${g}, acc${r}_${g});`);
    }
  }
  return `${preamble(s)}
var<workgroup> As: array<vec4<f32>, ${(TK * TM) / 4}>;
var<workgroup> Bs: array<vec4<f32>, ${(TK * TN) / 4}>;
@compute @workgroup_size(${wgX}, ${wgY}, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let M = ${pu(W.M)}; let N = ${pu(W.N)}; let K = ${pu(W.K)};
  let tid = lid.y * ${wgX}u + lid.x;
  let tileRow = wid.y * ${TM}u; let tileCol = wid.x * ${TN}u;
  ${batchDecode(s.batchRank, 'wid.z')}
  ${accs.join('\n  ')}
  for (var k0 = 0u; k0 < K; k0 += ${TK}u) {
    ${tileLoader('As', 'A', s.aMode, TM, TK, T, 'tileRow', 'M', 'aB', W.sAM, W.sAK, W.sAK4)}
    ${tileLoader('Bs', 'B', s.bMode, TN, TK, T, 'tileCol', 'N', 'bB', W.sBN, W.sBK, W.sBK4)}
    workgroupBarrier();
    for (var kk = 0u; kk < ${TK}u; kk += 1u) {
      ${fmas.join('\n      ')}
    }
    workgroupBarrier();
  }
  ${stores(RM, RN, (r) => `tileRow + (lid.y + (${r} / 4u) * ${wgY}u) * 4u + ${r} % 4u`, (j) => `tileCol + (lid.x + (${j} / 4u) * ${wgX}u) * 4u + ${j} % 4u`)}
}`;
}

/**
 * Split-K kernel (see SplitKConfig): subgroup = `lanes` invocations along x sharing one block;
 * y picks the block's columns. Both operands are K-contiguous ('k1'). The K loop runs the same
 * number of times in every lane (the last, partial step zeroes A) so subgroupAdd stays in
 * uniform control flow; lane l then writes the block's elements l, l + lanes, ….
 */
function splitKSource(s: KernelSpec, c: SplitKConfig): string {
  const { lanes: L, rm: RM, rn: RN } = c;
  const lines: string[] = [];
  for (let r = 0; r < RM; r++) lines.push(`let a${r} = select(0.0, f32(A[ar${r} + kc]), k < K);`);
  for (let j = 0; j < RN; j++) lines.push(`let b${j} = f32(B[bc${j} + kc]);`);
  for (let r = 0; r < RM; r++) for (let j = 0; j < RN; j++) lines.push(`acc${r}_${j} = fma(a${r}, b${j}, acc${r}_${j});`);
  const setup: string[] = [];
  for (let r = 0; r < RM; r++) setup.push(`let ar${r} = aB + min(row0 + ${r}u, M - 1u) * ${pu(W.sAM)};`);
  for (let j = 0; j < RN; j++) setup.push(`let bc${j} = bB + min(col0 + ${j}u, N - 1u) * ${pu(W.sBN)};`);
  const accs: string[] = [];
  const sums: string[] = [];
  for (let r = 0; r < RM; r++) {
    for (let j = 0; j < RN; j++) {
      accs.push(`var acc${r}_${j} = 0.0;`);
      sums.push(`subgroupAdd(acc${r}_${j})`);
    }
  }
  return `enable subgroups;
${preamble(s)}
@compute @workgroup_size(${L}, ${c.wgY}, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let M = ${pu(W.M)}; let N = ${pu(W.N)}; let K = ${pu(W.K)};
  let row0 = wid.y * ${RM}u; let col0 = (wid.x * ${c.wgY}u + lid.y) * ${RN}u;
  ${batchDecode(s.batchRank, 'wid.z')}
  ${setup.join('\n  ')}
  ${accs.join('\n  ')}
  for (var k0 = 0u; k0 < K; k0 += ${L}u) {
    let k = k0 + lid.x; let kc = min(k, K - 1u);
    ${lines.join('\n    ')}
  }
  var sums = array<f32, ${RM * RN}>(${sums.join(', ')});
  ${storeLoop(RM, RN, (r) => `row0 + ${r}`, (j) => `col0 + ${j}`, (r, j) => `sums[${r} * ${RN}u + ${j}]`, 'lid.x', `${L}u`)}
}
`;
}
