/**
 * The soak verdict: a pure function of the sampled series, so the checker itself is tested on
 * made-up series as well as on a deliberately leaking workload (test/gpu/soak.test.ts).
 */

/** Memory at the end of one cycle (the same point of every cycle). */
export interface SoakSample {
  cycle: number;
  seconds: number;
  /** Dispatches since the start of the run. */
  dispatches: number;
  /** Resident memory after a full garbage collection. */
  rssBytes: number;
  /** JavaScript heap in use and memory of ArrayBuffers etc. (reported, not checked: part of RSS). */
  heapBytes: number;
  externalBytes: number;
  liveBytes: number;
  liveTensors: number;
  /** The pool's cached free buffers (including those released in the open batch). */
  pooledBytes: number;
  buffersCreated: number;
  /** Commands submitted but not yet known finished. */
  inFlight: number;
  /** After warm-up. */
  warm: boolean;
}

export interface SoakTolerances {
  /** RSS at the end may exceed RSS after warm-up by this many bytes … */
  rssAbsoluteBytes: number;
  /** … plus this fraction of RSS after warm-up. */
  rssRelative: number;
  /** Pool cached bytes may exceed the baseline by this many bytes … */
  poolAbsoluteBytes: number;
  /** … plus this fraction of the baseline's cached bytes (late fills of a size bucket). */
  poolRelative: number;
  /** The pool may grow in at most this share of the cycles after warm-up (at least 2 cycles). */
  poolGrowthShare: number;
  /** Samples averaged (median) at each end of the RSS comparison, against one-off noise. */
  rssWindow: number;
  /** Post-warm-up samples needed for a verdict. */
  minSamples: number;
}

/**
 * Chosen from runs on lavapipe (2 shared cores, 76 cycles over 5 min; figures in the README):
 * - live tensors and bytes: exact. Every cycle disposes all it made; any difference is a leak.
 * - RSS: +48 MiB + 5 %. Settled RSS is flat within ±3 MB for minutes, but steps up once or
 *   twice by 15–20 MB at a time, to a plateau ~40 MB above the first post-warm-up value, when it
 *   happens late (measured: 392 -> 431–438 MB between 100 and 150 s, then flat to 300 s; another
 *   run reached the plateau within its warm-up). The size of that step matches the work the
 *   runtime lets wait before yieldIfBusy drains it (8192 commands at ~5.5 KB each ≈ 45 MB, see
 *   src/gpu/inflight.ts): malloc keeps its high-water mark. The unbounded growth of issue #11
 *   (~55 MB per 10,000 dispatches) exceeds this within 15,000 dispatches, i.e. seconds.
 * - pool: +1 MiB + 10 %, growing in at most 10 % of the cycles (2 at least). Which buffers are
 *   free at a given moment depends on when batches are submitted, which depends on GPU timing,
 *   so a size bucket may get one more buffer late (measured: one 256 B buffer at 93 s of 300);
 *   a pool that does not reuse grows every cycle instead.
 */
export const DEFAULT_TOLERANCES: SoakTolerances = {
  rssAbsoluteBytes: 48 * 2 ** 20,
  rssRelative: 0.05,
  poolAbsoluteBytes: 2 ** 20,
  poolRelative: 0.1,
  poolGrowthShare: 0.1,
  rssWindow: 3,
  minSamples: 3,
};

const MiB = (b: number) => `${(b / 2 ** 20).toFixed(1)} MB`;
const KiB = (b: number) => `${(b / 2 ** 10).toFixed(0)} KB`;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/**
 * Checks the series after warm-up: live tensors and live bytes equal the baseline's at every
 * cycle (everything a cycle makes is disposed by its end); the pool's cached bytes never exceed
 * the baseline's by more than `poolBytes`; settled RSS at the end (median of the last
 * `rssWindow` samples) within `rssAbsoluteBytes + rssRelative × baseline` of the start.
 */
export function checkSoak(
  samples: readonly SoakSample[],
  baseline: number,
  tol: SoakTolerances = DEFAULT_TOLERANCES,
): { ok: boolean; verdict: string } {
  const fail = (why: string) => ({ ok: false, verdict: `FAIL: ${why}` });
  if (baseline < 0) return fail(`no sample after warm-up (${samples.length} cycles ran; run longer)`);
  const after = samples.slice(baseline);
  if (after.length < tol.minSamples) return fail(`only ${after.length} cycle(s) after warm-up, need ${tol.minSamples} (run longer)`);
  const b = after[0];
  const poolAllowed = tol.poolAbsoluteBytes + tol.poolRelative * b.pooledBytes;
  const growthAllowed = Math.max(2, Math.floor(tol.poolGrowthShare * (after.length - 1)));
  let growthCycles = 0;
  for (let i = 0; i < after.length; i++) {
    const s = after[i];
    const at = `at cycle ${s.cycle} (${s.seconds.toFixed(0)} s)`;
    if (s.liveTensors !== b.liveTensors)
      return fail(`live tensors ${b.liveTensors} after warm-up became ${s.liveTensors} ${at}: a tensor is not disposed`);
    if (s.liveBytes !== b.liveBytes)
      return fail(`live GPU bytes ${b.liveBytes} after warm-up became ${s.liveBytes} ${at}: a buffer is not released`);
    if (s.pooledBytes > b.pooledBytes + poolAllowed) {
      return fail(
        `pool cached bytes grew ${KiB(b.pooledBytes)} -> ${KiB(s.pooledBytes)} after warm-up ${at} (allowed +${KiB(poolAllowed)})`,
      );
    }
    if (i > 0 && s.pooledBytes > after[i - 1].pooledBytes && ++growthCycles > growthAllowed) {
      return fail(
        `pool cached bytes keep growing after warm-up: up in ${growthCycles} of ${i} cycles, ${KiB(b.pooledBytes)} -> ${KiB(s.pooledBytes)} ${at} (allowed in ${growthAllowed})`,
      );
    }
  }
  const w = Math.max(1, Math.min(tol.rssWindow, Math.floor(after.length / 2)));
  const start = median(after.slice(0, w).map((s) => s.rssBytes));
  const end = median(after.slice(-w).map((s) => s.rssBytes));
  const allowed = tol.rssAbsoluteBytes + tol.rssRelative * start;
  const last = after[after.length - 1];
  if (end - start > allowed)
    return fail(`resident memory grew ${MiB(start)} -> ${MiB(end)} after warm-up (+${MiB(end - start)}, allowed ${MiB(allowed)})`);
  return {
    ok: true,
    verdict: `PASS: ${after.length} cycles after warm-up (${(last.seconds - b.seconds).toFixed(0)} s): live tensors ${b.liveTensors} and live bytes ${MiB(b.liveBytes)} exact every cycle, pool ${KiB(b.pooledBytes)} -> ${KiB(last.pooledBytes)}, RSS ${MiB(start)} -> ${MiB(end)} (allowed +${MiB(allowed)})`,
  };
}
