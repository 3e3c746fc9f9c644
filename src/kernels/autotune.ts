/**
 * Per-adapter autotuning: for a kernel family and shape class, time a few candidate
 * configurations on the device and remember the fastest (tuning-store.ts caches it per adapter,
 * driver and library version). Kernel launches are synchronous and cannot wait for timings, so
 * measuring happens in `tune()` (the bench runs it before timing) or `tunePending()` (classes the
 * kernels asked for while tuning was on, e.g. after a first training step); until then a class
 * runs the tuning table's row. Every candidate is a configuration the kernels' tests cover, so a
 * choice changes results only within the kernels' stated tolerances.
 */
import { runtime } from '../gpu/runtime.js';
import type { AttentionConfig } from './attention/codegen.js';
import { attentionBackward, attentionForward, chooseAttentionConfig } from './attention.js';
import type { MatmulConfig } from './matmul/configs.js';
import { matmulInto } from './matmul.js';
import { layerNormBackwardInto, layerNormInto, rmsNormInto } from './norm.js';
import type { RowPlan } from './row-reduce.js';
import { softmaxBackwardInto, softmaxInto } from './softmax.js';
import { recordChoice, hasChoice, takePending, tuningEnabled } from './tuning-store.js';
import {
  adapterTuning,
  attentionShapeClass,
  type RowFamily,
  matmulShapeClass,
  rowShapeClass,
  rowWorkgroupSize,
  setForcedRowPlan,
} from './tuning.js';
import type { View } from './view.js';

export interface TuneOptions {
  /** Time each candidate for at least this long per round (default 40 ms). */
  minMs?: number;
  /** Interleaved rounds; each candidate keeps its best (default 2). */
  rounds?: number;
  /** Measure even when a choice is cached. */
  force?: boolean;
}

export interface TuneCases {
  rows?: { family: RowFamily; rows: number; D: number }[];
  matmul?: { M: number; K: number; N: number; transB?: boolean }[];
  /** Attention over [B, H, N, D] (forward; backward too when `backward`). */
  attention?: { b: number; h: number; n: number; d: number; backward?: boolean }[];
}

/** Times `run` on the device: ms per call, the batch doubling until it lasts minMs. */
async function timeCall(run: () => void, minMs: number): Promise<number> {
  const rt = runtime();
  for (let n = 1; ; n *= 2) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      run();
      await rt.yieldIfBusy();
    }
    await rt.sync();
    const ms = performance.now() - t0;
    if (ms >= minMs || n >= 1024) return ms / n;
  }
}

/** The fastest of `candidates` (named by key), interleaved over rounds after one warm-up call each. */
async function pick<T>(candidates: [string, T][], run: (c: T) => void, o: TuneOptions): Promise<[T, Record<string, number>]> {
  const best: Record<string, number> = {};
  for (const [, c] of candidates) run(c);
  await runtime().sync();
  for (let r = 0; r < (o.rounds ?? 2); r++)
    for (const [k, c] of candidates) best[k] = Math.min(best[k] ?? Number.POSITIVE_INFINITY, await timeCall(() => run(c), o.minMs ?? 40));
  const [k] = Object.entries(best).sort((a, b) => a[1] - b[1])[0];
  const chosen = candidates.find(([name]) => name === k);
  if (!chosen) throw new Error(`autotune: lost candidate ${k}`);
  return [chosen[1], best];
}

/** Candidate plans for rows of length D: one row per invocation in workgroups of 8/32/128, and the table's workgroup per row. */
export function rowCandidates(D: number): [string, RowPlan][] {
  const out: [string, RowPlan][] = [8, 32, 128].map((wg) => [`thread${wg}`, { perThread: true, wg }]);
  out.push([`wg${rowWorkgroupSize(D)}`, { perThread: false, wg: rowWorkgroupSize(D) }]);
  return out;
}

function scratch(n: number): View {
  return { buffer: runtime().allocate(Math.max(4, n * 4), 'autotune scratch'), dtype: 'f32', shape: [n], strides: [1], offset: 0 };
}
const as2d = (v: View, rows: number, D: number): View => ({ ...v, shape: [rows, D], strides: [D, 1] });

/** Measures the row-kernel plans for one family and shape; records and returns the fastest. */
export async function tuneRows(family: RowFamily, rows: number, D: number, o: TuneOptions = {}): Promise<RowPlan> {
  const cls = `row|${family}|${rowShapeClass(rows, D)}`;
  const bufs = [scratch(rows * D), scratch(rows * D), scratch(rows * D), scratch(D), scratch(rows), scratch(rows)];
  const [x, dy, y, w, mean, rstd] = bufs.map((v, i) => (i < 3 ? as2d(v, rows, D) : v));
  const run: Record<RowFamily, () => void> = {
    layerNorm: () => layerNormInto(x, w, undefined, 1e-5, y, mean, rstd),
    rmsNorm: () => rmsNormInto(x, w, 1e-5, y, rstd),
    normBackward: () => layerNormBackwardInto(x, w, mean, rstd, dy, y),
    softmax: () => softmaxInto(x, y),
    softmaxBackward: () => softmaxBackwardInto(x, dy, y),
  };
  try {
    const [plan, ms] = await pick(
      rowCandidates(D),
      (p) => {
        setForcedRowPlan(p);
        try {
          run[family]();
        } finally {
          setForcedRowPlan(null);
        }
      },
      o,
    );
    recordChoice(cls, plan, ms);
    return plan;
  } finally {
    await runtime().sync();
    for (const v of bufs) runtime().release(v.buffer);
  }
}

/** Candidate matmul configurations: the table's, and register blockings around it. */
export function matmulCandidates(kContiguous: boolean): [string, MatmulConfig][] {
  const t = adapterTuning().matmul;
  const list: MatmulConfig[] = [t.general];
  if (kContiguous && t.kContiguous) list.push(t.kContiguous);
  if (t.broadcast)
    list.push(t.broadcast, { ...t.broadcast, rm: 16 }, { ...t.broadcast, rn: 4 }, { ...t.broadcast, rn: 2 * t.broadcast.rn });
  if (t.general.kind === 'register') {
    list.push({ ...t.general, rm: 8, rn: 16 }, { ...t.general, rm: 16, rn: 16 }, { ...t.general, rm: 8, rn: 8, wgX: 8, wgY: 8 });
  } else {
    list.push({ ...t.general, rm: 8, rn: 8 }, { kind: 'register', wgX: 8, wgY: 8, rm: 4, rn: 4 });
  }
  return list.map((c) => [JSON.stringify(c), c]);
}

/** Measures matmul configurations for one shape ([M, K]·[K, N], or B stored [N, K] when transB). */
export async function tuneMatmul(M: number, K: number, N: number, transB = false, o: TuneOptions = {}): Promise<MatmulConfig> {
  const kc = transB;
  const cls = matmulShapeClass(M, N, K, kc);
  const bufs = [scratch(M * K), scratch(K * N), scratch(M * N)];
  const a: View = { ...bufs[0], shape: [M, K], strides: [K, 1] };
  const b: View = transB ? { ...bufs[1], shape: [K, N], strides: [1, K] } : { ...bufs[1], shape: [K, N], strides: [N, 1] };
  const out: View = { ...bufs[2], shape: [M, N], strides: [N, 1] };
  try {
    const [cfg, ms] = await pick(matmulCandidates(kc), (config) => matmulInto(a, b, out, { config }), o);
    recordChoice(cls, cfg, ms);
    return cfg;
  } finally {
    await runtime().sync();
    for (const v of bufs) runtime().release(v.buffer);
  }
}

/** Candidate attention configurations: the table's, and thread/row blockings around it (streamed, loops over D when the table's does). */
export function attentionCandidates(d: number, pass: 'forward' | 'backward'): [string, AttentionConfig][] {
  const t = chooseAttentionConfig(d, pass);
  const list: AttentionConfig[] = [t];
  for (const [rows, perThread] of [
    [16, 4],
    [32, 2],
    [64, 2],
    [32, 4],
  ])
    if (rows !== t.rows || perThread !== t.perThread) list.push({ ...t, rows, perThread, stage: 0 });
  return list.slice(0, 4).map((c) => [JSON.stringify(c), c]);
}

/** Measures attention configurations for one [B, H, N, D] shape and pass. */
export async function tuneAttention(
  b: number,
  h: number,
  n: number,
  d: number,
  pass: 'forward' | 'backward',
  o: TuneOptions = {},
): Promise<AttentionConfig> {
  const cls = attentionShapeClass(pass, b * h, n, d);
  const sz = b * h * n * d;
  const bufs = Array.from({ length: 8 }, () => scratch(sz));
  const lseBuf = scratch(b * h * n);
  const v4 = (v: View): View => ({ ...v, shape: [b, h, n, d], strides: [h * n * d, n * d, d, 1] });
  const [q, k, v, out, dO, dq, dk, dv] = bufs.map(v4);
  const lse: View = { ...lseBuf, shape: [b, h, n], strides: [h * n, n, 1] };
  const scale = 1 / Math.sqrt(d);
  const run = (config: AttentionConfig) =>
    pass === 'forward'
      ? attentionForward(q, k, v, out, lse, scale, { config })
      : attentionBackward(q, k, v, out, lse, dO, dq, dk, dv, scale, { config });
  try {
    const [cfg, ms] = await pick(attentionCandidates(d, pass), run, o);
    recordChoice(cls, cfg, ms);
    return cfg;
  } finally {
    await runtime().sync();
    for (const x of [...bufs, lseBuf]) runtime().release(x.buffer);
  }
}

/** Tunes the given cases (skipping cached ones unless `force`); a no-op when tuning is off. */
export async function tune(cases: TuneCases, o: TuneOptions = {}): Promise<void> {
  if (!tuningEnabled()) return;
  for (const r of cases.rows ?? [])
    if (o.force || !hasChoice(`row|${r.family}|${rowShapeClass(r.rows, r.D)}`)) await tuneRows(r.family, r.rows, r.D, o);
  for (const m of cases.matmul ?? [])
    if (o.force || !hasChoice(matmulShapeClass(m.M, m.N, m.K, m.transB ?? false))) await tuneMatmul(m.M, m.K, m.N, m.transB, o);
  for (const a of cases.attention ?? [])
    for (const pass of a.backward ? (['forward', 'backward'] as const) : (['forward'] as const))
      if (o.force || !hasChoice(attentionShapeClass(pass, a.b * a.h, a.n, a.d))) await tuneAttention(a.b, a.h, a.n, a.d, pass, o);
}

/** Tunes the row-kernel classes the kernels asked for since the last call (at the class's upper bounds). */
export async function tunePending(o: TuneOptions = {}): Promise<number> {
  let n = 0;
  for (const cls of takePending()) {
    const m = /^row\|(\w+)\|D(\d+)xR(\d+)$/.exec(cls);
    if (!m) continue;
    await tuneRows(m[1] as RowFamily, Number(m[3]), Number(m[2]), o);
    n++;
  }
  return n;
}
