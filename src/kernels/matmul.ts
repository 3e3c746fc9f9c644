/**
 * Batched matrix products with a fused epilogue: out[b] = act(alpha · A[b]·B[b] + bias) + residual
 * (+ out when accumulating). A and B are arbitrary strided views, so a transposed operand is a
 * view with swapped strides (backward passes use exactly that: dX = dY·Wᵀ, dW = Xᵀ·dY) and a
 * broadcast batch dim has stride 0. Accumulation is always f32; inputs may be f32 or f16.
 *
 * This file plans a product (shapes, load modes, which kernel) and dispatches it. The four
 * kernels, chosen per adapter by the tuning table (tuning.ts; measurements: bench/results/):
 *  - 'register' (matmul/register.ts): no workgroup memory; each thread keeps an RM×RN block of
 *    outputs in registers and streams A and B from global memory.
 *  - 'shared' (matmul/shared.ts): tiles staged in workgroup memory. Meant for discrete GPUs.
 *  - 'splitk' (matmul/splitk.ts): for x·Wᵀ (both operands contiguous along K) with fixed-size
 *    subgroups: a subgroup shares one output block and splits K across its lanes.
 *  - 'broadcast' (matmul/broadcast.ts): for CPU adapters whose subgroup is the SIMD vector: the
 *    lanes of a subgroup load A's rows once between them and share them with subgroupBroadcast.
 * Edges need no padding: loads clamp their row/column (or zero-fill, in the tiled kernel) and
 * stores are guarded, so M, N, K need not be multiples of anything. The epilogue and parameters
 * the kernels share are in matmul/epilogue.ts.
 */
import { runtime } from '../gpu/runtime.js';
import { broadcastShapes, fmt, sizeOf } from '../core/shape.js';
import { fixedSubgroupSize } from './common.js';
import { broadcastStrides, coalesce } from './elementwise.js';
import type { BroadcastConfig, MatmulConfig } from './matmul/configs.js';
import { configKey } from './matmul/configs.js';
import { MAX_BATCH_RANK, matmulUniforms, type KernelSpec, type LoadMode, type MatmulActivation } from './matmul/epilogue.js';
import { matmulSource } from './matmul/source.js';
import { adapterTuning, tunedMatmulConfig } from './tuning.js';
import type { View } from './view.js';

export type { AdapterMatmulConfigs, BroadcastConfig, MatmulConfig, RegisterConfig, SharedConfig, SplitKConfig } from './matmul/configs.js';
export type { MatmulActivation } from './matmul/epilogue.js';
export { chooseMatmulConfig } from './tuning.js';

/** Smallest K for which the adapter's K-contiguous (split-K) kernel is chosen automatically. */
export const SPLITK_MIN_K = 768;

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

/** Whether the split-K and broadcast kernels can run: subgroups of exactly `lanes` invocations. */
function fixedSubgroups(lanes: number): boolean {
  return fixedSubgroupSize() === lanes;
}

/** The adapter table's broadcast kernel, if this device's subgroups let it run. */
export function usableBroadcastConfig(): BroadcastConfig | undefined {
  const b = adapterTuning().matmul.broadcast;
  return b && fixedSubgroups(b.lanes) ? b : undefined;
}

interface Plan {
  M: number;
  N: number;
  K: number;
  batchShape: number[];
  aMode: LoadMode;
  bMode: LoadMode;
  params: Uint32Array;
}

function fail(a: View, b: View, why: string): never {
  throw new RangeError(`matmul: shapes ${fmt(a.shape)} and ${fmt(b.shape)} ${why}`);
}

function stripLeadingOnes(s: readonly number[]): number[] {
  let i = 0;
  while (i < s.length && s[i] === 1) i++;
  return s.slice(i);
}

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
  if (
    out.shape.length < 2 ||
    out.shape[out.shape.length - 2] !== M ||
    out.shape[out.shape.length - 1] !== N ||
    fmt(stripLeadingOnes(oBatch)) !== fmt(batch)
  ) {
    fail(a, b, `give [${[...batch, M, N].join(', ')}], but out has shape ${fmt(out.shape)}`);
  }
  for (const v of [a, b])
    if (v.dtype !== 'f32' && v.dtype !== 'f16') throw new TypeError(`matmul: inputs must be f32 or f16, got ${v.dtype}`);
  if (out.dtype !== 'f32' && out.dtype !== 'f16') throw new TypeError(`matmul: out must be f32 or f16, got ${out.dtype}`);
  if (sizeOf(out.shape) === 0) return;

  let accumulate = opts.accumulate ?? false;
  let residual = opts.residual;
  for (const [name, v] of [
    ['a', a],
    ['b', b],
    ['bias', opts.bias],
  ] as const) {
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
    sAM: ms(a, -2),
    sAK: ms(a, -1),
    sBK: ms(b, -2),
    sBN: ms(b, -1),
    sOM: ms(out, -2),
    sON: ms(out, -1),
  };
  const vecOk = (v: View, bs: number[], ...strides: number[]) =>
    v.offset % 4 === 0 && bs.every((s) => s % 4 === 0) && strides.every((s) => s % 4 === 0);
  let aMode: LoadMode =
    m.sAK === 1 && K % 4 === 0 && vecOk(a, merged.strides[0], m.sAM)
      ? 'k4'
      : m.sAM === 1 && M % 4 === 0 && vecOk(a, merged.strides[0], m.sAK)
        ? 'o4'
        : m.sAK === 1
          ? 'k1'
          : m.sAM === 1
            ? 'o1'
            : 's';
  let bMode: LoadMode =
    m.sBN === 1 && N % 4 === 0 && vecOk(b, merged.strides[1], m.sBK)
      ? 'o4'
      : m.sBK === 1 && K % 4 === 0 && vecOk(b, merged.strides[1], m.sBN)
        ? 'k4'
        : m.sBN === 1
          ? 'o1'
          : m.sBK === 1
            ? 'k1'
            : 's';
  const kContiguous = (aMode === 'k1' || aMode === 'k4') && (bMode === 'k1' || bMode === 'k4');
  const table = adapterTuning().matmul;
  // Split-K pays off only for long K (rows of B far apart; measured at K = 1024). At DiT-demo
  // sizes (K = 96, M = 1024, N = 288) it ran at 5.4 GFLOP/s against 11–12 for the register kernel.
  const longK = K >= SPLITK_MIN_K;
  const broadcast = usableBroadcastConfig();
  let cfg: MatmulConfig =
    opts.config ??
    tunedMatmulConfig(M, N, K, kContiguous) ??
    broadcast ??
    (kContiguous && longK && table.kContiguous ? table.kContiguous : table.general);
  if (cfg.kind === 'splitk' && !(kContiguous && fixedSubgroups(cfg.lanes))) cfg = table.general;
  if (cfg.kind === 'broadcast' && !fixedSubgroups(cfg.lanes)) cfg = table.general;
  const scalarLoads = (cfg.kind === 'register' && cfg.scalar) || cfg.kind === 'splitk' || cfg.kind === 'broadcast';
  if (scalarLoads) {
    if (aMode === 'k4') aMode = 'k1';
    if (aMode === 'o4') aMode = 'o1';
    if (bMode === 'k4') bMode = 'k1';
    // The broadcast kernel keeps vec4 loads of B along N: they are a lane's own four columns.
    if (bMode === 'o4' && cfg.kind !== 'broadcast') bMode = 'o1';
  }
  const act = opts.activation ?? 'none';

  const dispatchRange = (shape: number[], strides: number[][], offs: number[]): void => {
    // Batch dims beyond what the kernel decodes are peeled off here, one dispatch per index.
    if (shape.length > MAX_BATCH_RANK) {
      for (let i = 0; i < shape[0]; i++)
        dispatchRange(
          shape.slice(1),
          strides.map((s) => s.slice(1)),
          offs.map((o, k) => o + i * strides[k][0]),
        );
      return;
    }
    const nBatch = sizeOf(shape);
    const maxZ = runtime().limits.maxComputeWorkgroupsPerDimension;
    for (let start = 0; start < nBatch; start += maxZ) {
      const params = matmulUniforms(shape.length).pack({
        M,
        N,
        K,
        batch_start: start,
        a_sm: m.sAM,
        a_sk: m.sAK,
        b_sk: m.sBK,
        b_sn: m.sBN,
        o_sm: m.sOM,
        o_sn: m.sON,
        bias_sn: bias ? bias.strides[bias.strides.length - 1] : 0,
        res_sm: rStr[0],
        res_sn: rStr[1],
        alpha: opts.alpha ?? 1,
        a_offset: offs[0],
        b_offset: offs[1],
        o_offset: offs[2],
        bias_offset: bias?.offset ?? 0,
        res_offset: offs[3],
        a_sk4: Math.trunc(m.sAK / 4),
        b_sk4: Math.trunc(m.sBK / 4),
        batch_shape: shape,
        a_batch_stride: strides[0],
        b_batch_stride: strides[1],
        o_batch_stride: strides[2],
        res_batch_stride: strides[3],
      });
      const plan: Plan = { M, N, K, batchShape: shape, aMode, bMode, params };
      launch(plan, a, b, out, bias, residual, cfg, act, accumulate, Math.min(maxZ, nBatch - start));
    }
  };
  dispatchRange(merged.shape, merged.strides, [a.offset, b.offset, out.offset, residual?.offset ?? 0]);
}

function launch(
  plan: Plan,
  a: View,
  b: View,
  out: View,
  bias: View | undefined,
  residual: View | undefined,
  cfg: MatmulConfig,
  act: MatmulActivation,
  accumulate: boolean,
  zGroups: number,
): void {
  const spec: KernelSpec = {
    cfg,
    aMode: plan.aMode,
    bMode: plan.bMode,
    aT: a.dtype,
    bT: b.dtype,
    oT: out.dtype,
    biasT: bias?.dtype,
    resT: residual?.dtype,
    act,
    accumulate,
    batchRank: plan.batchShape.length,
  };
  if (cfg.kind !== 'splitk' && (cfg.rn % 4 !== 0 || cfg.rm % 4 !== 0))
    throw new RangeError(`matmul: invalid config ${JSON.stringify(cfg)}`);
  const key = `matmul|${configKey(cfg)}|A${spec.aMode}:${spec.aT}|B${spec.bMode}:${spec.bT}|O${spec.oT}|bias:${spec.biasT ?? '-'}|res:${spec.resT ?? '-'}|${act}|${accumulate ? 'acc' : 'set'}|br${spec.batchRank}`;
  const buffers = [a.buffer, b.buffer, ...(bias ? [bias.buffer] : []), ...(residual ? [residual.buffer] : []), out.buffer];
  runtime().dispatch(
    {
      key,
      bindings: [...buffers.slice(0, -1).map(() => 'read' as const), 'write', 'uniform'],
      wgsl: () => matmulSource(spec),
    },
    buffers,
    matmulGrid(cfg, plan.M, plan.N, zGroups),
    plan.params,
  );
}

/** Workgroups of a product: every kernel tiles N along x and M along y. */
function matmulGrid(cfg: MatmulConfig, M: number, N: number, z: number): [number, number, number] {
  switch (cfg.kind) {
    case 'splitk':
      return [Math.ceil(N / (cfg.wgY * cfg.rn)), Math.ceil(M / cfg.rm), z];
    case 'broadcast':
      return [Math.ceil(N / (cfg.lanes * cfg.rn)), Math.ceil(M / cfg.rm), z];
    default:
      return [Math.ceil(N / (cfg.wgX * cfg.rn)), Math.ceil(M / (cfg.wgY * cfg.rm)), z];
  }
}
