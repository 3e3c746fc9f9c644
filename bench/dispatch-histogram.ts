/**
 * Where the dispatches of a recorded training step go, and what keeps the fusion pass from
 * merging more of them: records the DiT^DH step of bench/train-step.ts once, runs the fusion pass on the recording, and prints
 *
 * - a histogram of dispatch kinds (the pipeline key's family; maps by name) before and after fusion;
 * - for each elementwise map left after fusion, what reads its result (producer → consumer pairs,
 *   with the reason the pass could not merge them: the value outlives the step, has several
 *   readers, feeds a non-map kernel, …).
 *
 * Run: npx vite-node bench/dispatch-histogram.ts
 */
import { fuseMaps } from '../src/kernels/fusion.js';
import type { Cmd, DispatchCmd, ValueInfo } from '../src/gpu/recorder.js';
import { init, shutdown } from '../src/gpu/runtime.js';
import { makeDitdhStep } from './ditdh-step.js';

/** A dispatch's family: maps by their op name, fused maps by their stages, other kernels by key prefix. */
export function kindOf(c: DispatchCmd): string {
  const parts = c.key.split('|');
  if (parts[0] === 'map') return `map:${parts[1]}`;
  if (parts[0] === 'fused') {
    const names = [...c.key.matchAll(/(?:^|;|\|)([a-zA-Z0-9_]+)\{/g)].map((m) => m[1]);
    return `fused(${names.length})`;
  }
  return parts[0].replace(/[:(].*$/, '');
}

function count(xs: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const x of xs) m.set(x, (m.get(x) ?? 0) + 1);
  return new Map([...m].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
}

function table(before: Map<string, number>, after: Map<string, number>): string[] {
  const keys = [...new Set([...before.keys(), ...after.keys()])].sort(
    (a, b) => (before.get(b) ?? 0) - (before.get(a) ?? 0) || (after.get(b) ?? 0) - (after.get(a) ?? 0),
  );
  return keys.map((k) => `  ${String(before.get(k) ?? 0).padStart(5)} ${String(after.get(k) ?? 0).padStart(6)}  ${k}`);
}

/** Why the map `n` of `cmds` was not merged into a reader: one line per (producer, consumer kind, reason). */
function blockers(cmds: readonly Cmd[], values: readonly ValueInfo[]): string[] {
  const readers = new Map<number, number[]>();
  cmds.forEach((c, n) => {
    if (c.kind !== 'dispatch') {
      (readers.get(c.src) ?? readers.set(c.src, []).get(c.src)!).push(n);
      return;
    }
    c.values.forEach((v, k) => {
      if (c.src.bindings[k] !== 'read') return;
      (readers.get(v) ?? readers.set(v, []).get(v)!).push(n);
    });
  });
  const lines: string[] = [];
  cmds.forEach((c, n) => {
    if (c.kind !== 'dispatch') return;
    const kind = kindOf(c);
    if (!kind.startsWith('map:') && !kind.startsWith('fused')) return;
    // Every value it writes (a fused kernel may store several), and the later commands reading any.
    const outs = c.values.filter((_, k) => c.src.bindings[k] === 'write');
    const rs = [...new Set(outs.flatMap((o) => readers.get(o) ?? []))].filter((r) => r > n);
    const into = rs.map((r) => {
      const d = cmds[r];
      return d.kind === 'copy' ? 'copy' : kindOf(d);
    });
    let why: string;
    if (outs.some((o) => !values[o].intermediate)) why = 'outlives the step';
    else if (rs.length === 0) why = 'no reader';
    else if (rs.length > 1) why = `${rs.length} readers`;
    else if (into[0].startsWith('map:') || into[0].startsWith('fused')) why = 'map reader (shape/stride/clobber/size)';
    else why = 'non-map reader';
    lines.push(`${kind} -> [${into.join(', ')}]  (${why})`);
  });
  return lines;
}

async function main(): Promise<void> {
  const rt = await init({ profile: false });
  const { step, dispose } = makeDitdhStep();
  step();
  step();
  await rt.sync();
  let before: Cmd[] = [];
  let after: Cmd[] = [];
  let infos: readonly ValueInfo[] = [];
  rt.beginRecording();
  step();
  const program = rt.endRecording(true, (cmds, values) => {
    before = [...cmds];
    infos = values;
    after = fuseMaps(cmds, values);
    return after;
  });
  program.dispose();
  const kinds = (cmds: Cmd[]) => cmds.map((c) => (c.kind === 'copy' ? 'copy' : kindOf(c)));
  const nd = (cmds: Cmd[]) => cmds.filter((c) => c.kind === 'dispatch').length;
  const lines = [
    `DiT^DH step: ${nd(before)} dispatches recorded, ${nd(after)} after fusion (copies ${before.length - nd(before)})`,
    '',
    'before  after  kind',
    ...table(count(kinds(before)), count(kinds(after))),
    '',
    'maps left after fusion: producer -> readers (why not merged)',
    ...[...count(blockers(after, infos))].map(([k, v]) => `  ${String(v).padStart(4)}  ${k}`),
  ];
  // --list: every command before fusion (--list-fused: after), with its operands (w: written, *: lives only in the step).
  if (process.argv.includes('--list') || process.argv.includes('--list-fused'))
    (process.argv.includes('--list') ? before : after).forEach((c, n) => {
      if (c.kind === 'copy') return lines.push(`${n} copy v${c.src} -> v${c.dst}`);
      const ops = c.values.map((v, k) => `${c.src.bindings[k] === 'write' ? 'w' : ''}v${v}${infos[v].intermediate ? '*' : ''}`);
      lines.push(`${String(n).padStart(4)} ${kindOf(c).padEnd(18)} ${ops.join(' ')}  ${c.key.slice(0, 90)}`);
    });
  console.log(lines.join('\n'));
  dispose();
  await rt.sync();
  shutdown();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
