/**
 * Shared timing helpers for kernel benchmarks. Work is recorded without waiting; the GPU is
 * synchronised once per timed batch, so the figures include dispatch recording and submission
 * overhead but no per-op read-back (that is how the engine runs in training).
 */
import { pathToFileURL } from 'node:url';
import { runtime } from '../src/gpu/runtime.js';

export interface TimingOptions {
  /** Untimed calls first (pipeline compilation, pool warm-up). Default 2. */
  warmup?: number;
  /** Keep doubling the batch until one batch takes at least this long. Default 1 s. */
  minSeconds?: number;
  /** Upper bound on calls per batch. Default 4096. */
  maxIters?: number;
}

export interface Timing {
  iters: number;
  seconds: number;
  /** Mean wall time per call, milliseconds. */
  ms: number;
  /**
   * Mean CPU time of this process per call (all threads), milliseconds. On a CPU adapter such as
   * lavapipe this is the work itself, far less disturbed by other processes than wall time.
   */
  cpuMs: number;
}

/** Times `record` (which must only record GPU work) over many calls with one sync at the end. */
export async function timeGpu(record: () => void, opts: TimingOptions = {}): Promise<Timing> {
  const rt = runtime();
  const { warmup = 2, minSeconds = 1, maxIters = 4096 } = opts;
  for (let i = 0; i < warmup; i++) record();
  await rt.sync();
  // A batch may hold more commands than the runtime lets wait in flight: yield when it is deep.
  const recordAll = async (n: number) => {
    for (let i = 0; i < n; i++) {
      record();
      await rt.yieldIfBusy();
    }
  };
  let iters = 1;
  for (;;) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    await recordAll(iters);
    await rt.sync();
    const seconds = (performance.now() - t0) / 1000;
    const c = process.cpuUsage(c0);
    if (seconds >= minSeconds || iters >= maxIters)
      return { iters, seconds, ms: (seconds * 1000) / iters, cpuMs: (c.user + c.system) / 1000 / iters };
    // Aim straight for the target instead of doubling many times.
    iters = Math.min(maxIters, Math.max(iters * 2, Math.ceil((iters * minSeconds * 1.2) / Math.max(seconds, 1e-6))));
  }
}

export const gflops = (flops: number, t: Timing): number => flops / (t.ms * 1e-3) / 1e9;

export function markdownTable(headers: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n');
}

/** True when the module at `metaUrl` is the script node was started with. */
export function isMain(metaUrl: string): boolean {
  return process.argv[1] !== undefined && metaUrl === pathToFileURL(process.argv[1]).href;
}

/** One line naming the adapter, for result files. */
export function adapterLine(): string {
  const s = runtime().adapterSummary;
  return `${s.description || s.device} (vendor ${s.vendor || '?'}, ${s.architecture || '?'}, backend ${s.backend})`;
}
