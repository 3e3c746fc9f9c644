/**
 * One tuning table per adapter, for every kernel family: matmul configurations, attention
 * configurations, row-kernel workgroup sizes. First matching row wins; rows match on the
 * adapter's names (vendor, architecture, device, description).
 *
 * The lavapipe row is measured (bench/results/lavapipe-matmul.md, bench/attention.ts); the
 * NVIDIA and default rows are starting points not yet measured with these kernels.
 *
 * Why lavapipe differs: llvmpipe runs 8 invocations as the lanes of one SIMD vector, and every
 * storage-buffer load whose address varies across lanes becomes 8 bounds-checked scalar loads, a
 * vec4 load 32 of them. So what counts is loaded elements per FMA (big per-thread blocks: 12×16)
 * and code size (scalar loads with a K step of 1 compiled smaller and ran faster than vec4 loads
 * with a step of 4). Workgroup memory has no benefit there and costs barriers (coroutines).
 * Attention on lavapipe (B=1 H=4 N=256 D=64): streamed rows and loops over D beat staged tiles
 * (≈ 15 % slower) and unrolled registers (≈ 25 % slower, and 50 s compiles instead of 1–3 s);
 * 4×4 register blocks were best forward, 2×4 backward (4×4 was as fast but compiles 4× longer).
 */
import { adapterName, type AdapterCaps } from '../gpu/caps.js';
import { runtime } from '../gpu/runtime.js';
import type { AttentionConfig } from './attention/codegen.js';
import type { ConvConfig } from './conv-config.js';
import type { AdapterMatmulConfigs } from './matmul/configs.js';

export interface AdapterTuning {
  name: string;
  matmul: AdapterMatmulConfigs;
  /**
   * Per pass (forward; dQ and dK/dV share backward). A staged config's `stage` is an upper bound:
   * it is halved (down to `unroll`) until the tiles fit the adapter's workgroup memory.
   */
  attention: { forward: AttentionConfig; backward: AttentionConfig };
  /**
   * Row kernels (norms, softmax, row reductions): workgroup size for rows of length ≤ n, first
   * match, never below the subgroup size; longer rows get `rowWorkgroupMax`. On lavapipe
   * (subgroups of 8), rows of 96 with 16 threads instead of 64: RMSNorm forward+backward over
   * [1024, 96] 6.7 → 2.9 ms, softmax 4.1 → 1.4 ms.
   */
  rowWorkgroups: readonly (readonly [n: number, workgroup: number])[];
  rowWorkgroupMax: number;
  /** Implicit-GEMM convolution tile (conv.ts), forward and both gradients. */
  conv: ConvConfig;
}

type AdapterNames = Partial<Pick<AdapterCaps, 'vendor' | 'architecture' | 'device' | 'description'>>;

const ROW_WORKGROUPS = [
  [128, 16],
  [256, 32],
  [512, 64],
] as const;
const CPU_ATTENTION = {
  forward: { rows: 32, perThread: 4, unroll: 4, stage: 0, loops: true },
  backward: { rows: 32, perThread: 2, unroll: 4, stage: 0, loops: true },
};
const GPU_ATTENTION = {
  forward: { rows: 64, perThread: 1, unroll: 4, stage: 32, loops: false },
  backward: { rows: 64, perThread: 1, unroll: 4, stage: 32, loops: false },
};
// 8×8 outputs per thread: a first sweep under heavy load (bench/results/*-conv.md) put 8×8 and
// 4×8 ahead of 4×4, 8×4 and 12×8 (the last also compiles ≈ 20 s); not yet measured on a quiet machine.
const CPU_CONV = { wgX: 8, wgY: 4, rm: 8, rn: 8 } as const;
const GPU_CONV = { wgX: 16, wgY: 8, rm: 4, rn: 4 } as const;
const CPU_MATMUL = { kind: 'register', wgX: 8, wgY: 4, rm: 12, rn: 16, scalar: true } as const;

const TABLE: { match: RegExp; tuning: AdapterTuning }[] = [
  {
    match: /llvmpipe|lavapipe/,
    tuning: {
      name: 'lavapipe/llvmpipe',
      matmul: { general: CPU_MATMUL, kContiguous: { kind: 'splitk', lanes: 8, wgY: 4, rm: 12, rn: 16 } },
      attention: CPU_ATTENTION,
      rowWorkgroups: ROW_WORKGROUPS,
      rowWorkgroupMax: 256,
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
