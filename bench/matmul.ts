/**
 * Matmul throughput (GFLOP/s = 2·M·N·K / wall time) of the register-blocked (vec4 and scalar),
 * workgroup-memory tiled and split-K kernels, with B contiguous ([K, N]) and transposed (a [N, K]
 * weight viewed as [K, N], the x·Wᵀ of a Linear layer). Results: bench/results/*-matmul.md.
 *
 * Once built to JS: `node dist/bench/matmul.js` prints a markdown table; `printMatmulBench` returns
 * the same text for a bench runner.
 */
import { init, runtime } from '../src/gpu/runtime.js';
import { chooseMatmulConfig, matmulInto, type AdapterMatmulConfigs, type MatmulConfig } from '../src/kernels/matmul.js';
import { randn } from '../src/tensor/creation.js';
import { empty, viewOf } from '../src/tensor/tensor.js';
import { adapterLine, gflops, isMain, markdownTable, timeGpu, type TimingOptions } from './common.js';

export interface MatmulBenchCase {
  name: string;
  M: number;
  K: number;
  N: number;
  transB?: boolean;
}

export interface MatmulBenchRow {
  case: MatmulBenchCase;
  config: string;
  ms: number;
  gflops: number;
  /** CPU milliseconds per call (see Timing.cpuMs). */
  cpuMs: number;
}

const SIZES: Omit<MatmulBenchCase, 'transB'>[] = [
  { name: '256³', M: 256, K: 256, N: 256 },
  { name: '512³', M: 512, K: 512, N: 512 },
  { name: '1024³', M: 1024, K: 1024, N: 1024 },
  { name: 'DiT M512 K384 N1152', M: 512, K: 384, N: 1152 },
];

export const DEFAULT_CASES: MatmulBenchCase[] = [
  ...SIZES.map((s) => ({ ...s })),
  ...SIZES.map((s) => ({ ...s, name: `${s.name} Bᵀ`, transB: true })),
];

/** `auto` lets matmulInto pick from the adapter table per call (what the engine runs). */
export const CANDIDATE_CONFIGS: Record<string, MatmulConfig | 'auto'> = {
  'register 4×4/thr vec4': { kind: 'register', wgX: 8, wgY: 8, rm: 4, rn: 4 },
  'register 12×16/thr scalar': { kind: 'register', wgX: 8, wgY: 4, rm: 12, rn: 16, scalar: true },
  'shared 64×64×16, 4×4/thr': { kind: 'shared', wgX: 16, wgY: 16, rm: 4, rn: 4, tk: 16 },
  // Only for K-contiguous operands (the Bᵀ rows); elsewhere matmulInto would fall back.
  'split-K 8 lanes, 12×16/subgroup': { kind: 'splitk', lanes: 8, wgY: 4, rm: 12, rn: 16 },
  // Subgroups of exactly 8 lanes (lavapipe); elsewhere matmulInto falls back to the general kernel.
  'broadcast 8 lanes, 32×64/subgroup': { kind: 'broadcast', lanes: 8, rm: 32, rn: 8 },
};

export function describeConfig(c: MatmulConfig): string {
  switch (c.kind) {
    case 'register':
      return `register ${c.wgX}×${c.wgY} threads, ${c.rm}×${c.rn} per thread, ${c.scalar ? 'scalar loads' : 'vec4 loads'}`;
    case 'shared':
      return `shared ${c.wgY * c.rm}×${c.wgX * c.rn}×${c.tk} tile, ${c.wgX}×${c.wgY} threads, ${c.rm}×${c.rn} per thread`;
    case 'splitk':
      return `split-K over ${c.lanes} subgroup lanes, ${c.rm}×${c.rn} block per subgroup, ${c.wgY} subgroups per workgroup`;
    case 'broadcast':
      return `subgroup broadcast, ${c.lanes} lanes, ${c.rm}×${c.lanes * c.rn} block per subgroup, ${c.rn} columns per lane`;
  }
}

export function describeTable(t: AdapterMatmulConfigs): string {
  return `general: ${describeConfig(t.general)}${t.kContiguous ? `; both operands K-contiguous: ${describeConfig(t.kContiguous)}` : ''}${t.broadcast ? `; with fixed subgroups: ${describeConfig(t.broadcast)}` : ''}`;
}

export async function benchMatmul(
  cases: MatmulBenchCase[] = DEFAULT_CASES,
  configs: Record<string, MatmulConfig | 'auto'> = CANDIDATE_CONFIGS,
  timing: TimingOptions & { repeats?: number } = {},
): Promise<MatmulBenchRow[]> {
  // Configs are interleaved and each keeps its best of `repeats` timings: on a shared machine
  // the fastest run is the one least disturbed by other processes.
  const repeats = timing.repeats ?? 3;
  const rows: MatmulBenchRow[] = [];
  for (const c of cases) {
    const a = randn([c.M, c.K], { seed: 1 });
    const bStored = randn(c.transB ? [c.N, c.K] : [c.K, c.N], { seed: 2 });
    const b = c.transB ? viewOf(bStored, [c.K, c.N], [1, c.K], 0) : bStored;
    const out = empty([c.M, c.N]);
    const best = new Map<string, MatmulBenchRow>();
    for (let rep = 0; rep < repeats; rep++) {
      for (const [name, config] of Object.entries(configs)) {
        if (config !== 'auto' && config.kind === 'splitk' && !c.transB) continue;
        const opts = config === 'auto' ? {} : { config };
        const t = await timeGpu(() => matmulInto(a, b, out, opts), { ...timing, warmup: rep === 0 ? timing.warmup : 0 });
        const row = { case: c, config: name, ms: t.ms, gflops: gflops(2 * c.M * c.N * c.K, t), cpuMs: t.cpuMs };
        if (!best.has(name) || best.get(name)!.ms > row.ms) best.set(name, row);
      }
    }
    rows.push(...best.values());
    for (const t of new Set([a, b, bStored, out])) t.dispose();
  }
  return rows;
}

export function formatMatmulResults(rows: MatmulBenchRow[]): string {
  const configs = [...new Set(rows.map((r) => r.config))];
  const cases = [...new Set(rows.map((r) => r.case))];
  const table = cases.map((c) => [
    c.name,
    ...configs.map((cfg) => {
      const r = rows.find((x) => x.case === c && x.config === cfg);
      return r ? `${r.gflops.toFixed(2)} (${r.ms.toFixed(1)} ms, cpu ${r.cpuMs.toFixed(1)} ms)` : '—';
    }),
  ]);
  return markdownTable(['shape (M·K·N)', ...configs.map((c) => `${c} GFLOP/s`)], table);
}

/** The whole report as text (for bench/run.ts's `() => Promise<string>` entries). Needs init(). */
export async function printMatmulBench(): Promise<string> {
  const rows = await benchMatmul(DEFAULT_CASES, CANDIDATE_CONFIGS);
  return [
    `Adapter: ${adapterLine()}`,
    `Adapter table: ${describeTable(chooseMatmulConfig(runtime().adapterSummary))}`,
    '',
    formatMatmulResults(rows),
  ].join('\n');
}

async function main(): Promise<void> {
  await init();
  console.log(await printMatmulBench());
}

if (isMain(import.meta.url)) {
  main().then(
    () => process.exit(0),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
