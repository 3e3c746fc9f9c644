/** The results document (--json) and its markdown rendering (--markdown, bench/results, BENCHMARKS.md). */
import type { KnownLimits } from './limits.js';
import type { CaseResult, EngineCell } from './runner.js';

export interface SuiteResults {
  schema: 'rae-webgpu-bench/1';
  adapter: { description: string; vendor: string; architecture: string; device: string; backend: string };
  toggles: string[];
  /** How the process waited for the GPU (src/gpu/event-polling.ts); absent in older results. */
  gpuWaits?: string;
  /** Where kernel configurations came from: the tuning table, the autotuner's cache, or --retune. */
  tuning?: string;
  commit: string;
  date: string;
  command: string;
  quick: boolean;
  /** 1-minute load average when the run started and ended (other processes share the CPUs). */
  loadAverage: { start: number; end: number };
  durationSeconds: number;
  /** GB/s of the elementwise copy in this run: the limit for memory-bound cases. */
  copyBandwidthGBs: number | null;
  knownLimits: KnownLimits | null;
  peers: Record<string, string>;
  cases: CaseResult[];
}

const f = (v: number | undefined, digits = 2) => (v === undefined ? '—' : v >= 100 ? v.toFixed(0) : v.toFixed(digits));

/** Dispatches per call, and host µs per dispatch (median, min) with the GPU idle, where measured. */
function counterText(c: Record<string, number> | undefined): string {
  if (!c) return '';
  const parts: string[] = [];
  if (c.dispatches) parts.push(`${c.dispatches} dispatches`);
  if (c.hostUsPerDispatch !== undefined) parts.push(`host ${f(c.hostUsPerDispatch, 1)} µs/dispatch (min ${f(c.hostUsPerDispatchMin, 1)})`);
  return parts.length ? `, ${parts.join(', ')}` : '';
}

function ourCell(r: CaseResult): string {
  if (r.error) return `✗ ${r.error}`;
  const rate = r.metric === 'ms' ? `${f(r.median)} ms` : `${f(r.rate)} ${r.metric}`;
  return `${rate} (${f(r.min)}–${f(r.max)} ms${counterText(r.counters)})`;
}

function peerCell(r: CaseResult, name: string): string {
  const p = r.peers[name];
  if (!p) return '';
  if (p.error) return p.error.startsWith('n/a') ? 'n/a' : `✗ ${p.error.replace(/\|/g, '/')}`;
  const wrong = p.correctness && !p.correctness.pass ? ' ✗ wrong result' : '';
  return `${f(p.ratio)}× (${f(p.median)} ms${counterText(p.counters)})${wrong}`;
}

export function toMarkdown(res: SuiteResults): string {
  const peers = Object.keys(res.peers);
  const lines = [
    `# Benchmarks — ${res.adapter.description || res.adapter.device}`,
    '',
    `- adapter: ${res.adapter.description} (vendor ${res.adapter.vendor || '?'}, ${res.adapter.architecture || '?'}, backend ${res.adapter.backend})`,
    `- toggles: ${res.toggles.length ? res.toggles.join(', ') : 'none'}`,
    ...(res.gpuWaits ? [`- GPU waits: ${res.gpuWaits}, for ours and the peers alike (one process)`] : []),
    ...(res.tuning ? [`- kernel configurations: ${res.tuning}`] : []),
    `- commit ${res.commit}, ${res.date}, ${res.durationSeconds.toFixed(0)} s, load average ${res.loadAverage.start.toFixed(2)} → ${res.loadAverage.end.toFixed(2)}`,
    `- command: \`${res.command}\``,
    `- elementwise-copy bandwidth (this run, the copy case): ${res.copyBandwidthGBs ? `${res.copyBandwidthGBs.toFixed(2)} GB/s` : 'not measured'}`,
    `- known limits: ${res.knownLimits ? `${res.knownLimits.name}, ${res.knownLimits.fp32Tflops} TFLOP/s fp32, ${res.knownLimits.bandwidthGBs} GB/s` : 'none for this adapter (software adapters have no fp32 peak)'}`,
    ...peers.map((p) => `- peer ${p}: ${res.peers[p]}`),
    '',
    "Times are per call to GPU completion, median of the timed repeats (min–max in brackets), after one untimed repeat per engine; within a case the engines' repeats run interleaved, one repeat each per round. % of limit: of a known GPU's fp32 peak, or for memory-bound cases of an elementwise copy of the case's first input (same bytes) timed in the same rounds. Peer columns: peer time / our time (above 1: ours is faster); in the `ours compiled` columns that is compiled time / eager time (below 1: the compiled step is faster).",
    '',
    `| case | shape | ours | % of limit | check | ${peers.join(' | ')} |`,
    `|---|---|---|---|---|${peers.map(() => '---|').join('')}`,
  ];
  for (const r of res.cases) {
    const chk = r.correctness === undefined ? '—' : r.correctness === null ? 'no ref' : r.correctness.pass ? 'pass' : 'FAIL';
    const frac =
      r.fractionOfLimit === null
        ? '—'
        : `${(100 * r.fractionOfLimit).toFixed(0)}%${r.copyReferenceGBs ? ` of copy ${r.copyReferenceGBs.toFixed(2)} GB/s` : ''}`;
    lines.push(
      `| ${r.name} | ${r.shape} | ${ourCell(r).replace(/\|/g, '/')} | ${frac} | ${chk} | ${peers.map((p) => peerCell(r, p)).join(' | ')} |`,
    );
  }
  const failed = res.cases.flatMap((r) =>
    Object.entries({ ours: r as EngineCell, ...r.peers }).flatMap(([n, p]) => [
      ...(p.error && !p.error.startsWith('n/a') ? [`- ${r.name} ${r.shape}, ${n}: ${p.error}`] : []),
      ...(p.correctness && !p.correctness.pass ? [`- ${r.name} ${r.shape}, ${n}: wrong result: ${p.correctness.detail}`] : []),
    ]),
  );
  if (failed.length) lines.push('', 'Failures and wrong results:', '', ...failed);
  return `${lines.join('\n')}\n`;
}
