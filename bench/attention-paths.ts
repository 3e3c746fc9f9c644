/**
 * The two attention paths (src/kernels/attention.ts: fused 'flash' kernels, 'materialized' score
 * matrix on the matmul) and jax-js jit, interleaved in one process: per case, `ROUNDS` rounds in
 * which every engine is measured once (the suite's `measure`, min of 3 repeats), so that load on
 * a shared machine hits all of them alike. Prints each round's times and ours/jax ratios of the
 * best rounds. Uses the suite's attention (or block) cases and engines.
 *
 *   npx vite-node bench/attention-paths.ts            env: ROUNDS=3 SUITE=attention|block
 *     FILTER='(4, 6, 256'  (substring of "name shape")  NOJAX=1 (without the peer)  NOFLASH=1
 */
import { init } from '../src/gpu/runtime.js';
import { type AttentionPath, setForcedAttentionPath } from '../src/kernels/attention.js';
import { installBrowserShims } from './peers/env.js';
import { jaxEngines } from './peers/jax.js';
import { buildCases } from './suite/cases.js';
import type { Engine, Prepared } from './suite/engine.js';
import { measure } from './suite/measure.js';
import { oursEngine } from './suite/ours.js';

const env = process.env;
const rt = await init({ profile: false });
const ours = oursEngine();
const engines: [string, Engine, AttentionPath | null][] = [];
if (!env.NOFLASH) engines.push(['flash', ours, 'flash']);
engines.push(['materialized', ours, 'materialized']);
if (!env.NOJAX) {
  installBrowserShims(rt);
  const jit = (await jaxEngines()).find((e) => e.name === 'jax-jit');
  if (jit) engines.push(['jax-jit', jit, null]);
}
const suite = env.SUITE ?? 'attention';
const cases = buildCases({ software: rt.caps.software !== null }).filter(
  (c) => c.suite === suite && (!env.FILTER || `${c.name} ${c.shape}`.includes(env.FILTER)),
);
const rounds = Number(env.ROUNDS ?? 3);
for (const c of cases) {
  const inputs = c.inputs();
  const prepared: [string, Prepared, AttentionPath | null][] = [];
  for (const [name, e, path] of engines) {
    setForcedAttentionPath(path);
    const p = await e.prepare(c, inputs);
    await p.run();
    await p.sync();
    prepared.push([name, p, path]);
  }
  const times: Record<string, number[]> = {};
  for (let r = 0; r < rounds; r++)
    for (const [name, p, path] of prepared) {
      setForcedAttentionPath(path);
      (times[name] ??= []).push((await measure(p, { repeats: 3, targetMs: 300, maxCalls: 50 })).min);
    }
  setForcedAttentionPath(null);
  const best = (n: string) => Math.min(...times[n]);
  const cells = Object.entries(times).map(([n, t]) => `${n} ${t.map((x) => x.toFixed(0)).join('/')} ms`);
  const ratios = times['jax-jit']
    ? Object.keys(times)
        .filter((n) => n !== 'jax-jit')
        .map((n) => `${n} ${(best('jax-jit') / best(n)).toFixed(2)}× jax-jit`)
    : [];
  console.log(`${c.name} ${c.shape}: ${cells.join(' | ')}${ratios.length ? ` | best rounds: ${ratios.join(', ')}` : ''}`);
  for (const [, p] of prepared) p.dispose();
}
