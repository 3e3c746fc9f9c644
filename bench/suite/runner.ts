/**
 * Runs cases on engines: per case, every engine is prepared and makes one call checked against the
 * float64 reference, chooses its calls per repeat and makes one untimed repeat (warmUp); then the
 * engines' timed repeats run interleaved (timeInterleaved). A failing
 * engine fills its cell with the reason and the suite goes on.
 */
import cliProgress from 'cli-progress';
import type { Engine, Prepared } from './engine.js';
import { UnsupportedCase } from './engine.js';
import { knownLimits, type KnownLimits } from './limits.js';
import { type CheckResult, callsPerRepeat, check, summarize, timeRepeat, type TimingPlan, warmUp } from './measure.js';
import type { BenchCase, Expected, Input, Unit } from './spec.js';

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
  /**
   * Rate over the limit named in `limit`: the fp32 peak of a known GPU, or for memory-bound cases
   * the bandwidth of a copy of the case's first input, timed in the same interleaved rounds.
   */
  fractionOfLimit: number | null;
  limit: string | null;
  /** Memory-bound cases: the bandwidth of the copy timed beside them (see copyReference). */
  copyReferenceGBs?: number;
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

/** One engine within a case: prepared, first call checked, calls per repeat chosen; then its repeat times. */
interface Slot {
  engine: Engine;
  cell: EngineCell;
  p: Prepared | null;
  calls: number;
  samples: number[];
}

function release(slot: Slot): void {
  try {
    slot.p?.dispose();
  } catch {
    // a dispose failure must not hide the figures
  }
  slot.p = null;
}

async function prepareSlot(
  engine: Engine,
  c: BenchCase,
  expected: Expected | null,
  plan: TimingPlan,
  inputs: ReturnType<BenchCase['inputs']>,
) {
  const slot: Slot = { engine, cell: {}, p: null, calls: 0, samples: [] };
  try {
    slot.p = await engine.prepare(c, inputs);
  } catch (e) {
    slot.cell.error = e instanceof UnsupportedCase ? `n/a: ${e.message}` : `failed to prepare: ${firstLine(e)}`;
    return slot;
  }
  try {
    const p = slot.p;
    const t0 = performance.now();
    await p.run();
    await p.sync();
    const firstMs = performance.now() - t0;
    // A wrong result is reported as such, and still timed (the check says what the time is worth).
    slot.cell.correctness = expected ? check(await p.read(expected.output), expected) : null;
    slot.calls = await callsPerRepeat(p, plan, firstMs);
    await warmUp(p, slot.calls);
    p.counters?.(); // reset: count over the timed calls only
  } catch (e) {
    slot.cell.error = `failed to run: ${firstLine(e)}`;
    release(slot);
  }
  return slot;
}

/**
 * The timed repeats of every engine of a case, interleaved: round r times one repeat of each
 * engine, starting with a different engine each round, so that a change in the machine's speed
 * during the case (other processes, clocks) falls on all engines alike instead of on whichever
 * ran then.
 */
async function timeInterleaved(slots: Slot[], plan: TimingPlan): Promise<void> {
  for (let r = 0; r < plan.repeats; r++) {
    const live = slots.filter((s) => s.p);
    for (let k = 0; k < live.length; k++) {
      const slot = live[(k + r) % live.length];
      try {
        if (slot.p) slot.samples.push(await timeRepeat(slot.p, slot.calls));
      } catch (e) {
        slot.cell.error = `failed to run: ${firstLine(e)}`;
        release(slot);
      }
    }
  }
}

/**
 * The copy a memory-bound case is measured against: an elementwise copy of the case's first input
 * (the same bytes, so the same cache regime), made by our engine and timed as one more slot of the
 * case's interleaved rounds, so that a change in the machine's speed during the run falls on the
 * kernel and its copy alike. (The suite's own copy case, over a larger tensor and timed once at the
 * start, gives the run's headline copy bandwidth; on lavapipe it differed from a copy timed beside
 * a row kernel by up to 2×, which once put rmsNorm at 136 % "of copy".)
 */
function copyReference(inputs: Input[]): { c: BenchCase; inputs: Input[] } {
  const x = inputs[0];
  const n = x.data.length;
  const flat: Input = { name: `${x.name} (copy reference)`, shape: [n], data: x.data };
  return {
    c: {
      name: 'copy reference',
      suite: 'copy',
      shape: `[${n}]`,
      op: { kind: 'copy', n },
      unit: 'GB/s',
      work: 2 * 4 * n,
      limit: null,
      quick: true,
      inputs: () => [flat],
      expected: null,
    },
    inputs: [flat],
  };
}

async function finish(slot: Slot, c: BenchCase): Promise<EngineCell> {
  const { cell, p } = slot;
  if (!p) return cell;
  try {
    const m = summarize(slot.samples, slot.calls);
    Object.assign(cell, { median: m.median, min: m.min, max: m.max });
    if (c.unit !== 'ms') cell.rate = c.work / (m.median * 1e-3) / 1e9;
    const counters = p.counters?.();
    if (counters) cell.counters = counters;
    if (p.hostProbe) cell.counters = { ...cell.counters, ...(await p.hostProbe()) };
  } catch (e) {
    cell.error = `failed to run: ${firstLine(e)}`;
  } finally {
    release(slot);
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
    bar?.update({ case: `${c.name} ${c.shape} · preparing` });
    const engines = [ours, ...peers.filter((peer) => !peer.supports || peer.supports(c))];
    const slots: Slot[] = [];
    for (const engine of engines) slots.push(await prepareSlot(engine, c, expected, ctx.plan, inputs));
    const ref = c.limit === 'copy' && inputs.length ? copyReference(inputs) : null;
    const refSlot = ref ? await prepareSlot(ours, ref.c, null, ctx.plan, ref.inputs) : null;
    bar?.update({ case: `${c.name} ${c.shape} · timing ${slots.filter((s) => s.p).length} engines, interleaved` });
    await timeInterleaved(refSlot ? [...slots, refSlot] : slots, ctx.plan);
    const cells: EngineCell[] = [];
    for (const slot of slots) {
      cells.push(await finish(slot, c));
      bar?.increment();
    }
    const refCell = ref && refSlot ? await finish(refSlot, ref.c) : null;
    bar?.increment(peers.length + 1 - slots.length); // engines without a cell for this case
    const cell = cells[0];
    if (refError) cell.error = cell.error ?? refError;
    if (c.op.kind === 'copy' && cell.rate) copyBandwidthGBs = cell.rate;
    let fractionOfLimit: number | null = null;
    let limit: string | null = null;
    if (cell.rate !== undefined && c.limit === 'fp32' && limits) {
      fractionOfLimit = cell.rate / (limits.fp32Tflops * 1000);
      limit = `${limits.name} fp32 peak ${limits.fp32Tflops} TFLOP/s`;
    } else if (cell.rate !== undefined && c.limit === 'copy' && refCell?.rate) {
      fractionOfLimit = cell.rate / refCell.rate;
      limit = `elementwise copy of the same ${ref!.c.shape} f32 values, timed in the same rounds: ${refCell.rate.toFixed(2)} GB/s`;
    } else if (c.limit === 'copy' && refCell?.error) {
      limit = `no fraction: the copy it is measured against ${refCell.error}`;
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
      ...(refCell?.rate ? { copyReferenceGBs: refCell.rate } : {}),
      peers: {},
    };
    slots.slice(1).forEach((slot, k) => {
      const pc: PeerCell = cells[k + 1];
      if (pc.median !== undefined && r.median !== undefined) pc.ratio = pc.median / r.median;
      r.peers[slot.engine.name] = pc;
    });
    results.push(r);
    ctx.onCase?.(r);
  }
  bar?.stop();
  return { copyBandwidthGBs, knownLimits: limits, cases: results };
}
