/**
 * One tuning table per adapter, for every kernel family: matmul configurations, attention
 * configurations, row-kernel workgroup sizes. First matching row wins; rows match on the
 * adapter's names (vendor, architecture, device, description).
 *
 * The lavapipe row is measured (bench/results/lavapipe-matmul.md, bench/attention.ts); the
 * NVIDIA and default rows are starting points not yet measured with these kernels.
 *
 * Why lavapipe differs: llvmpipe runs 8 invocations as the lanes of one SIMD vector, and every
 * storage-buffer load whose offset is not a compile-time constant becomes a loop over the 8 lanes
 * with a bounds check per lane (≈ 12 instructions per element, read in GALLIVM_DEBUG=asm dumps:
 * llvmpipe's uniform-load path needs nir_src_is_always_uniform, which no loop counter is). So what
 * counts is loaded elements per FMA. The subgroup-broadcast kernel (matmul/broadcast.ts) loads
 * each row of A once per subgroup instead of once per lane: 32 rows × 64 columns per subgroup ran
 * 1.6–3.0× the register kernel's 12×16 per thread (bench/results/lavapipe-matmul-broadcast.md), and
 * beat split-K on x·Wᵀ too. Workgroup memory has no benefit there and costs barriers (coroutines).
 * Attention on lavapipe (B=1 H=4 N=256 D=64): streamed rows and loops over D beat staged tiles
 * (≈ 15 % slower) and unrolled registers (≈ 25 % slower, and 50 s compiles instead of 1–3 s);
 * 4×4 register blocks were best forward, 2×4 backward (4×4 was as fast but compiles 4× longer).
 * Row kernels on lavapipe: one row per invocation (no barriers) beat a workgroup per row 3–12×.
 *
 * With tuning on (init({ tune: true }) or RAE_TUNE=1), autotune.ts measures candidates per shape
 * class and tuning-store.ts caches the winners per adapter; rowPlan, tunedMatmulConfig and
 * tunedAttentionConfig consult them first. These rows stay the default and the fallback.
 */
import { adapterName, type AdapterCaps } from '../gpu/caps.js';
import { runtime } from '../gpu/runtime.js';
import type { AttentionConfig } from './attention/codegen.js';
import type { ConvConfig } from './conv-config.js';
import type { AdapterMatmulConfigs, MatmulConfig } from './matmul/configs.js';
import { applyRowStrategy, type RowPlan } from './row-reduce.js';
import { tunedChoice } from './tuning-store.js';

export interface AdapterTuning {
  name: string;
  matmul: AdapterMatmulConfigs;
  /**
   * Per pass (forward; dQ and dK/dV share backward). A staged config's `stage` is an upper bound:
   * it is halved (down to `unroll`) until the tiles fit the adapter's workgroup memory.
   * `materializeBytes`: attention runs through the score matrix (attention/materialized.ts) when
   * one (batch, head) slice's temporaries fit under it, in groups of slices under it; 0 = always
   * the fused (flash) kernels. `groupBytes`: how many slices go into one group (at least one, and
   * under materializeBytes): small groups keep the score matrix in the CPU's caches between the
   * kernels that write and read it.
   */
  attention: { forward: AttentionConfig; backward: AttentionConfig; materializeBytes: number; groupBytes: number };
  /**
   * Row kernels (norms, softmax, row reductions): workgroup size for rows of length ≤ n, first
   * match, never below the subgroup size; longer rows get `rowWorkgroupMax`. On lavapipe
   * (subgroups of 8), rows of 96 with 16 threads instead of 64: RMSNorm forward+backward over
   * [1024, 96] 6.7 → 2.9 ms, softmax 4.1 → 1.4 ms.
   */
  rowWorkgroups: readonly (readonly [n: number, workgroup: number])[];
  rowWorkgroupMax: number;
  /**
   * One row per invocation (no barriers, no workgroup memory) for rows of length ≤ maxD, in
   * workgroups of `wg` invocations; maxD 0 = never. See row-reduce.ts RowPlan.
   */
  rowThread: { maxD: number; wg: number };
  /** Implicit-GEMM convolution tile (conv.ts), forward and both gradients. */
  conv: ConvConfig;
}

type AdapterNames = Partial<Pick<AdapterCaps, 'vendor' | 'architecture' | 'device' | 'description'>>;

const ROW_WORKGROUPS = [
  [128, 16],
  [256, 32],
  [512, 64],
] as const;
// Forward 16 threads × 8 queries each ran faster at (4, 6, 256, 64) than 32 × 4 (264–342 ms vs
// 446–572 ms in 5 of 6 rounds at load ~25) but compiles 18–28 s per head dim cold (over 60 s at
// D = 128) instead of 1–3 s, so the table keeps 32 × 4 (bench/results/lavapipe-row-kernels-2026-12-02.md).
// Through the score matrix (materializeBytes), measured in one process with 2–3 interleaved rounds
// at load 5–8: (4, 6, 256, 64) forward 71–80 ms vs 107–148 fused, forward+backward 238–287 vs
// 587–656; (8, 16, 256, 72) forward 458–487 vs 591–686, forward+backward 1842–2849 vs 5556–7410.
// 64 MiB keeps (4, 16, 1024, 128) on it too (forward 7.6 s vs 15.1 s fused at load 8; temporaries
// 4 MiB per slice forward, 8 backward). Groups of 2 MiB instead of the whole cap (interleaved,
// load 7–8): (4, 6, 256, 64) forward+backward 156–337 ms vs 167–446; (8, 16, 256, 72) 1005–1682
// vs 1918–2251, forward 490–537 vs 445–823: the scores stay in cache from one kernel to the next.
// With the broadcast matmul (2× faster) the whole cap won instead (quiet machine, 5 interleaved
// rounds, median/min ms, groups of 2 / 8 / 64 MiB): (4, 6, 256, 64) forward+backward 130/115,
// 88/81, 85/64; (8, 16, 256, 72) forward+backward 634/581, 581/554, 522/498, forward 165/144,
// 165/154, 155/145: fewer, larger dispatches now outweigh the cache locality.
const CPU_ATTENTION = {
  forward: { rows: 32, perThread: 4, unroll: 4, stage: 0, loops: true },
  backward: { rows: 32, perThread: 2, unroll: 4, stage: 0, loops: true },
  materializeBytes: 64 * 2 ** 20,
  groupBytes: 64 * 2 ** 20,
};
const GPU_ATTENTION = {
  forward: { rows: 64, perThread: 1, unroll: 4, stage: 32, loops: false },
  backward: { rows: 64, perThread: 1, unroll: 4, stage: 32, loops: false },
  materializeBytes: 0,
  // Not measured: a forced score-matrix path on a GPU wants big groups (occupancy), not cache locality.
  groupBytes: 64 * 2 ** 20,
};
// 8×8 outputs per thread: a first sweep under heavy load (bench/results/*-conv.md) put 8×8 and
// 4×8 ahead of 4×4, 8×4 and 12×8 (the last also compiles ≈ 20 s); not yet measured on a quiet machine.
// lanes: 8 (the forward's weight rows shared by subgroupBroadcast where subgroups are fixed at 8):
// Inception (bench/inception-throughput.ts 16 2, alternating runs on the quiet machine) 1.15–1.26 →
// 1.59–1.61 images/s, CPU 46.6–50.5 → 37.0–37.1 s per 32 images.
const CPU_CONV = { wgX: 8, wgY: 4, rm: 8, rn: 8, lanes: 8 } as const;
const GPU_CONV = { wgX: 16, wgY: 8, rm: 4, rn: 4 } as const;
// One row per invocation beat one workgroup per row on lavapipe at every shape measured
// (bench/kernels-tune.ts; bench/results/lavapipe-row-kernels-2026-12-02.md): 3–12× for the
// norms and softmax at [4096, 384], [4096, 256], [1024, 96], [256, 1152], even with only 256 rows.
const CPU_ROW_THREAD = { maxD: 2048, wg: 64 } as const;
// Not measured on a GPU: uncoalesced row-per-thread loads are unlikely to pay there.
const GPU_ROW_THREAD = { maxD: 0, wg: 64 } as const;
// Where subgroups are not the 8-lane SIMD vector (a device without the feature, a 512-bit build).
const CPU_MATMUL = { kind: 'register', wgX: 8, wgY: 4, rm: 12, rn: 16, scalar: true } as const;

const TABLE: { match: RegExp; tuning: AdapterTuning }[] = [
  {
    match: /llvmpipe|lavapipe/,
    tuning: {
      name: 'lavapipe/llvmpipe',
      matmul: {
        general: CPU_MATMUL,
        kContiguous: { kind: 'splitk', lanes: 8, wgY: 4, rm: 12, rn: 16 },
        broadcast: { kind: 'broadcast', lanes: 8, rm: 32, rn: 8 },
      },
      attention: CPU_ATTENTION,
      rowWorkgroups: ROW_WORKGROUPS,
      rowWorkgroupMax: 256,
      rowThread: CPU_ROW_THREAD,
      conv: CPU_CONV,
    },
  },
  {
    match: /swiftshader/,
    tuning: {
      name: 'swiftshader',
      matmul: { general: CPU_MATMUL },
      attention: CPU_ATTENTION,
      rowWorkgroups: ROW_WORKGROUPS,
      rowWorkgroupMax: 256,
      rowThread: CPU_ROW_THREAD,
      conv: CPU_CONV,
    },
  },
  {
    match: /nvidia|geforce|rtx|h100|h200|a100/,
    tuning: {
      name: 'nvidia',
      // 128×128 tiles, 8×8 outputs per thread, 256 threads, 16 KiB of workgroup memory.
      matmul: { general: { kind: 'shared', wgX: 16, wgY: 16, rm: 8, rn: 8, tk: 16 } },
      attention: GPU_ATTENTION,
      rowWorkgroups: ROW_WORKGROUPS,
      rowWorkgroupMax: 256,
      rowThread: GPU_ROW_THREAD,
      conv: GPU_CONV,
    },
  },
];
const DEFAULT_TUNING: AdapterTuning = {
  name: 'default',
  matmul: { general: { kind: 'shared', wgX: 16, wgY: 16, rm: 4, rn: 4, tk: 16 } },
  attention: GPU_ATTENTION,
  rowWorkgroups: ROW_WORKGROUPS,
  rowWorkgroupMax: 256,
  rowThread: GPU_ROW_THREAD,
  conv: GPU_CONV,
};

/** The tuning row for an adapter (names may be partial: tests and benchmarks ask about others). */
export function tuningFor(info: AdapterNames): AdapterTuning {
  const name = adapterName(info);
  return TABLE.find((row) => row.match.test(name))?.tuning ?? DEFAULT_TUNING;
}

let chosen: { rt: object; tuning: AdapterTuning } | null = null;
/** The current runtime's row, looked up once per runtime. */
export function adapterTuning(): AdapterTuning {
  const rt = runtime();
  if (chosen?.rt !== rt) chosen = { rt, tuning: tuningFor(rt.caps) };
  return chosen.tuning;
}

/** The matmul kernel configurations for an adapter. */
export function chooseMatmulConfig(info: AdapterNames): AdapterMatmulConfigs {
  return tuningFor(info).matmul;
}

/** Workgroup size of a row kernel for rows of length n (see AdapterTuning.rowWorkgroups). */
export function rowWorkgroupSize(n: number): number {
  const t = adapterTuning();
  const sub = runtime().caps.subgroupMaxSize ?? 32;
  const wg = t.rowWorkgroups.find(([maxN]) => n <= maxN)?.[1] ?? t.rowWorkgroupMax;
  return Math.max(wg, sub);
}

/** The row-kernel families the autotuner keeps separate choices for. */
export type RowFamily = 'layerNorm' | 'rmsNorm' | 'normBackward' | 'softmax' | 'softmaxBackward';

/** Shape class of a row kernel: row length and row count, each rounded up to a power of two. */
export function rowShapeClass(rows: number, D: number): string {
  const p2 = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));
  return `D${p2(D)}xR${p2(rows)}`;
}

/** The table's plan for rows of length D: one row per thread up to rowThread.maxD, else per workgroup. */
export function tablePlan(D: number): RowPlan {
  const t = adapterTuning();
  return D <= t.rowThread.maxD ? { perThread: true, wg: t.rowThread.wg } : { perThread: false, wg: rowWorkgroupSize(D) };
}

/**
 * How a row kernel of `family` runs over [rows, D]: the autotuner's cached choice for this
 * adapter and shape class when tuning is on and one exists, else the table's plan; then any
 * strategy a test forced (setRowStrategy).
 */
export function rowPlan(family: RowFamily, rows: number, D: number): RowPlan {
  if (forcedRowPlan) return forcedRowPlan;
  const tuned = tunedChoice<RowPlan>(`row|${family}|${rowShapeClass(rows, D)}`);
  const plan = tuned && isRowPlan(tuned) ? tuned : tablePlan(D);
  return applyRowStrategy(plan, rowWorkgroupSize(D));
}

/** Row reductions (reduce.ts) over rows of length R: the table's plan, then any forced strategy. */
export function rowReducePlan(R: number): RowPlan {
  return applyRowStrategy(tablePlan(R), rowWorkgroupSize(R));
}

let forcedRowPlan: RowPlan | null = null;
/** Makes every row kernel run under `plan` until reset with null (the autotuner's candidates). */
export function setForcedRowPlan(plan: RowPlan | null): void {
  forcedRowPlan = plan;
}

/** Shape class of a matmul: general or both-K-contiguous, and M, N, K rounded up to powers of two. */
export function matmulShapeClass(M: number, N: number, K: number, kContiguous: boolean): string {
  const p2 = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));
  return `mm|${kContiguous ? 'kc' : 'g'}|M${p2(M)}N${p2(N)}K${p2(K)}`;
}

/** The autotuner's matmul configuration for a shape class, when tuning is on and one was measured. */
export function tunedMatmulConfig(M: number, N: number, K: number, kContiguous: boolean): MatmulConfig | undefined {
  const c = tunedChoice<MatmulConfig>(matmulShapeClass(M, N, K, kContiguous));
  if (typeof c !== 'object' || c === null) return undefined;
  const ints = (...v: unknown[]) => v.every((x) => Number.isInteger(x) && (x as number) >= 1 && (x as number) <= 64);
  if (c.kind === 'register' && ints(c.wgX, c.wgY, c.rm, c.rn)) return c;
  if (c.kind === 'shared' && ints(c.wgX, c.wgY, c.rm, c.rn, c.tk)) return c;
  if (c.kind === 'splitk' && kContiguous && ints(c.lanes, c.wgY, c.rm, c.rn)) return c;
  if (c.kind === 'broadcast' && ints(c.lanes, c.rm, c.rn)) return c;
  return undefined;
}

/** Shape class of attention: pass, batch·heads, sequence length and head dim, each rounded up to a power of two. */
export function attentionShapeClass(pass: 'forward' | 'backward', bh: number, n: number, d: number): string {
  const p2 = (v: number) => 2 ** Math.ceil(Math.log2(Math.max(1, v)));
  return `attn|${pass}|BH${p2(bh)}N${p2(n)}D${p2(d)}`;
}

/** The autotuner's attention configuration for a shape class (attention.ts validates it). */
export function tunedAttentionConfig(pass: 'forward' | 'backward', bh: number, n: number, d: number): AttentionConfig | undefined {
  const c = tunedChoice<AttentionConfig>(attentionShapeClass(pass, bh, n, d));
  return typeof c === 'object' && c !== null ? c : undefined;
}

function isRowPlan(v: unknown): v is RowPlan {
  const p = v as RowPlan;
  return typeof p === 'object' && p !== null && typeof p.perThread === 'boolean' && Number.isInteger(p.wg) && p.wg >= 1 && p.wg <= 256;
}
