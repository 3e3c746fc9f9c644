/**
 * Runs cases on engines: per case and engine, one call and its check against the float64
 * reference, then the timed repeats. A failing engine fills its cell with the reason and the
 * suite goes on.
 */
import cliProgress from 'cli-progress';
import type { Engine, Prepared } from './engine.js';
import { UnsupportedCase } from './engine.js';
import { knownLimits, type KnownLimits } from './limits.js';
import { type CheckResult, check, measure, type TimingPlan } from './measure.js';
import type { BenchCase, Expected, Unit } from './spec.js';

export interface EngineCell {
  /** Milliseconds per call. */
  median?: number;
  min?: number;
  max?: number;
  /** GFLOP/s or GB/s at the median time (absent for 'ms' cases). */
  rate?: number;
  correctness?: CheckResult | null;
  counters?: Record<string, number>;
  /** Why there is no figure: unsupported, failed to load, failed to run, wrong result. */
  error?: string;
}

export interface PeerCell extends EngineCell {
  /** Peer time / our time: above 1, ours is faster. */
  ratio?: number;
}

export interface CaseResult extends EngineCell {
  name: string;
  suite: string;
  shape: string;
  /** The rate's unit (GFLOP/s, GB/s) or 'ms' for whole steps; times are always ms per call. */
  metric: Unit;
  unit: 'ms';
  /** Rate over the limit named in `limit` (fp32 peak of a known GPU, or the copy bandwidth of this run). */
  fractionOfLimit: number | null;
  limit: string | null;
  peers: Record<string, PeerCell>;
}

export interface RunContext {
  adapterName: string;
  plan: TimingPlan;
  progress?: boolean;
  /** Called with each finished case (e.g. to save partial results). */
  onCase?: (r: CaseResult) => void;
}

export interface SuiteRun {
  copyBandwidthGBs: number | null;
  knownLimits: KnownLimits | null;
  cases: CaseResult[];
}

const firstLine = (e: unknown) => {
  const s = e instanceof Error ? `${e.name === 'Error' ? '' : `${e.name}: `}${e.message}` : String(e);
  return s.split('\n')[0].slice(0, 240);
};

async function runOne(engine: Engine, c: BenchCase, expected: Expected | null, plan: TimingPlan, inputs: ReturnType<BenchCase['inputs']>) {
  let p: Prepared | null = null;
  const cell: EngineCell = {};
  try {
    try {
      p = await engine.prepare(c, inputs);
    } catch (e) {
      cell.error = e instanceof UnsupportedCase ? `n/a: ${e.message}` : `failed to prepare: ${firstLine(e)}`;
      return cell;
    }
    const t0 = performance.now();
    await p.run();
    await p.sync();
    const firstMs = performance.now() - t0;
    // A wrong result is reported as such, and still timed (the check says what the time is worth).
    cell.correctness = expected ? check(await p.read(expected.output), expected) : null;
    p.counters?.(); // reset: count over the timed calls only
    const m = await measure(p, plan, firstMs);
    Object.assign(cell, { median: m.median, min: m.min, max: m.max });
    if (c.unit !== 'ms') cell.rate = c.work / (m.median * 1e-3) / 1e9;
    const counters = p.counters?.();
    if (counters) cell.counters = counters;
    if (p.hostProbe) cell.counters = { ...cell.counters, ...(await p.hostProbe()) };
  } catch (e) {
    cell.error = `failed to run: ${firstLine(e)}`;
  } finally {
    try {
      p?.dispose();
    } catch {
      // a dispose failure must not hide the figures
    }
  }
  return cell;
}

export async function runCases(cases: BenchCase[], ours: Engine, peers: Engine[], ctx: RunContext): Promise<SuiteRun> {
  const limits = knownLimits(ctx.adapterName);
  const results: CaseResult[] = [];
  let copyBandwidthGBs: number | null = null;
  const bar = ctx.progress
    ? new cliProgress.SingleBar(
        { format: 'bench [{bar}] {value}/{total} {case}', hideCursor: true, clearOnComplete: true },
        cliProgress.Presets.shades_classic,
      )
    : null;
  bar?.start(cases.length * (1 + peers.length), 0, { case: '' });
  for (const c of cases) {
    const inputs = c.inputs();
    let expected: Expected | null = null;
    let refError: string | undefined;
    try {
      expected = c.expected ? c.expected(inputs) : null;
    } catch (e) {
      refError = `reference failed: ${firstLine(e)}`;
    }
    bar?.update({ case: `${c.name} ${c.shape} · ours` });
    const cell = await runOne(ours, c, expected, ctx.plan, inputs);
    if (refError) cell.error = cell.error ?? refError;
    bar?.increment();
    if (c.op.kind === 'copy' && cell.rate) copyBandwidthGBs = cell.rate;
    let fractionOfLimit: number | null = null;
    let limit: string | null = null;
    if (cell.rate !== undefined && c.limit === 'fp32' && limits) {
      fractionOfLimit = cell.rate / (limits.fp32Tflops * 1000);
      limit = `${limits.name} fp32 peak ${limits.fp32Tflops} TFLOP/s`;
    } else if (cell.rate !== undefined && c.limit === 'copy' && copyBandwidthGBs) {
      fractionOfLimit = cell.rate / copyBandwidthGBs;
      limit = `elementwise copy ${copyBandwidthGBs.toFixed(2)} GB/s (this run)`;
    }
    const r: CaseResult = {
      name: c.name,
      suite: c.suite,
      shape: c.shape,
      metric: c.unit,
      unit: 'ms',
      ...cell,
      fractionOfLimit,
      limit,
      peers: {},
    };
    for (const peer of peers) {
      if (peer.supports && !peer.supports(c)) {
        bar?.increment();
        continue;
      }
      bar?.update({ case: `${c.name} ${c.shape} · ${peer.name}` });
      const pc: PeerCell = await runOne(peer, c, expected, ctx.plan, inputs);
      if (pc.median !== undefined && r.median !== undefined) pc.ratio = pc.median / r.median;
      r.peers[peer.name] = pc;
      bar?.increment();
    }
    results.push(r);
    ctx.onCase?.(r);
  }
  bar?.stop();
  return { copyBandwidthGBs, knownLimits: limits, cases: results };
}
