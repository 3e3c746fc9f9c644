/**
 * Soak runs (issue #11, deliver 3): the real workloads — DiT^DH training steps, CFG sampling,
 * checkpoint write/read, rare read-backs — looped for ~25 s stay flat under the same checks as
 * `npm run soak`; and the checks fail on a workload that leaks (tests of the test).
 */
import { describe, expect, it } from 'vitest';
import { type SoakSample, checkSoak, DEFAULT_TOLERANCES } from '../../bench/soak-check.js';
import { runSoak } from '../../bench/soak-loop.js';
import { runtime } from '../../src/gpu/runtime.js';
import { randn } from '../../src/tensor/creation.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { useGpu } from '../helpers/setup.js';

useGpu();

const MiB = 2 ** 20;

/** Short cycles so a few seconds hold several of them, with every workload in each. */
const SHORT = { stepsPerCycle: 4, batch: 8, sampleSteps: 2, readEvery: 2, checkpointEvery: 2 } as const;

/** Stops after n cycles past a 3 s warm-up, however slow the machine is. */
function untilWarmCycles(n: number) {
  let warm = 0;
  const onSample = (s: SoakSample) => {
    if (s.warm) warm++;
  };
  return { seconds: 120, warmupSeconds: 3, onSample, shouldStop: () => warm >= n };
}

describe('soak loop', () => {
  it('the real workloads for ~25 s: live tensors and bytes exact every cycle, pool and RSS flat after warm-up', async () => {
    const rt = runtime();
    const d0 = rt.counters.dispatches;
    const r0 = rt.counters.readbacks;
    const res = await runSoak({ seconds: 25, warmupSeconds: 8, ...SHORT });
    expect(res.verdict).toMatch(/^PASS: /);
    expect(res.ok).toBe(true);
    expect(res.stopped).toBe(false);
    const after = res.samples.slice(res.baseline);
    expect(after.length).toBeGreaterThanOrEqual(DEFAULT_TOLERANCES.minSamples);
    expect(after[0].seconds).toBeGreaterThanOrEqual(8);
    // The workloads ran: training losses were read back and are finite, and far more dispatches
    // went through than read-backs (the loop mostly never awaits one).
    expect(res.losses.length).toBeGreaterThanOrEqual(2);
    for (const l of res.losses) expect(Number.isFinite(l)).toBe(true);
    const dispatches = rt.counters.dispatches - d0;
    expect(dispatches).toBeGreaterThanOrEqual(res.samples[res.samples.length - 1].dispatches);
    expect(dispatches / (rt.counters.readbacks - r0)).toBeGreaterThan(20);
    // Everything the loop made is gone once it returns.
    expect(rt.stats().liveBytes).toBeLessThanOrEqual(after[0].liveBytes);
  }, 120_000);

  it('fails, naming live tensors, when a workload keeps one extra tensor per cycle', async () => {
    const leaked: Tensor[] = [];
    const res = await runSoak({ ...untilWarmCycles(3), ...SHORT, extraPerCycle: () => void leaked.push(randn([16]).keep()) });
    for (const t of leaked) t.dispose();
    expect(res.ok).toBe(false);
    expect(res.verdict).toMatch(/^FAIL: live tensors (\d+) after warm-up became (\d+) at cycle \d+/);
    const [, a, b] = /live tensors (\d+) after warm-up became (\d+)/.exec(res.verdict)!;
    expect(Number(b) - Number(a)).toBe(1); // caught at the first cycle after the baseline
  }, 60_000);

  it('fails, naming resident memory, when a workload keeps 40 MB of host memory per cycle', async () => {
    const hoard: Buffer[] = [];
    // Medians of 3 cycles at each end, 3 cycles apart at least: ≥ 120 MB against ~70 MB allowed.
    const res = await runSoak({
      ...untilWarmCycles(6),
      ...SHORT,
      extraPerCycle: () => void hoard.push(Buffer.alloc(40 * MiB, 1)),
    });
    hoard.length = 0;
    expect(res.ok).toBe(false);
    expect(res.verdict).toMatch(/^FAIL: resident memory grew .* after warm-up/);
  }, 60_000);
});

/** A flat series of n cycles after `warm` warm-up cycles; `f(i)` changes fields of sample i. */
function series(n: number, warm: number, f: (i: number) => Partial<SoakSample> = () => ({})): SoakSample[] {
  return Array.from({ length: warm + n }, (_, i) => ({
    cycle: i + 1,
    seconds: 3 * (i + 1),
    dispatches: 8000 * (i + 1),
    rssBytes: RSS,
    heapBytes: 40 * MiB,
    externalBytes: 10 * MiB,
    liveBytes: 2 * MiB,
    liveTensors: 275,
    pooledBytes: POOL,
    buffersCreated: 600,
    inFlight: 0,
    warm: i >= warm,
    ...f(i),
  }));
}

const RSS = 400 * MiB;
const POOL = 5 * MiB;

describe('soak checker', () => {
  it('passes a flat series, with RSS noise inside the tolerance', () => {
    const s = series(20, 5, (i) => ({ rssBytes: RSS + (i % 3) * 4 * MiB }));
    expect(checkSoak(s, 5)).toEqual({ ok: true, verdict: expect.stringMatching(/^PASS: 20 cycles after warm-up/) });
  });

  it('fails when live bytes change after warm-up, even once and back', () => {
    const s = series(20, 5, (i) => (i === 12 ? { liveBytes: 2 * MiB + 256 } : {}));
    expect(checkSoak(s, 5).verdict).toMatch(/^FAIL: live GPU bytes 2097152 after warm-up became 2097408 at cycle 13/);
  });

  it('ignores what happens during warm-up', () => {
    const s = series(20, 5, (i) =>
      i < 5 ? { liveTensors: 285 - i, pooledBytes: POOL - (5 - i) * MiB, rssBytes: RSS - (5 - i) * 50 * MiB } : {},
    );
    expect(checkSoak(s, 5).ok).toBe(true);
  });

  it('fails on RSS growth beyond absolute + relative tolerance, and passes just inside it', () => {
    const allowed = DEFAULT_TOLERANCES.rssAbsoluteBytes + DEFAULT_TOLERANCES.rssRelative * RSS;
    const ramp = (total: number) => series(20, 5, (i) => ({ rssBytes: RSS + (Math.max(0, i - 5) / 19) * total }));
    expect(checkSoak(ramp(allowed * 1.2), 5).verdict).toMatch(/^FAIL: resident memory grew/);
    // Medians of 3 at each end of a linear ramp over 19 cycles differ by 17/19 of it.
    expect(checkSoak(ramp(allowed), 5).ok).toBe(true);
  });

  it('fails when the pool keeps growing in small steps, and when it grows past its bound at once', () => {
    const creeping = series(30, 5, (i) => ({ pooledBytes: POOL + Math.max(0, i - 5) * 4096 }));
    expect(checkSoak(creeping, 5).verdict).toMatch(/^FAIL: pool cached bytes keep growing after warm-up: up in 3 of 3 cycles/);
    const jump = series(30, 5, (i) => ({ pooledBytes: POOL + (i >= 20 ? 2 * MiB : 0) }));
    expect(checkSoak(jump, 5).verdict).toMatch(/^FAIL: pool cached bytes grew 5120 KB -> 7168 KB after warm-up at cycle 21/);
    // Two late fills of a size bucket are tolerated.
    const late = series(30, 5, (i) => ({ pooledBytes: POOL + (i >= 10 ? 8192 : 0) + (i >= 25 ? 8192 : 0) }));
    expect(checkSoak(late, 5).ok).toBe(true);
  });

  it('fails with too few cycles after warm-up, or none', () => {
    expect(checkSoak(series(2, 5), 5).verdict).toMatch(/^FAIL: only 2 cycle\(s\) after warm-up/);
    expect(checkSoak(series(0, 5), -1).verdict).toMatch(/^FAIL: no sample after warm-up/);
  });
});
