/**
 * Writes BENCHMARKS.md from a suite run's JSON: the adapter, the command that reproduces it, the
 * issue's targets judged met / not met, and the full table.
 *
 *   npx vite-node bench/benchmarks-md.ts bench/results/<adapter>.json > BENCHMARKS.md
 */
import { readFileSync } from 'node:fs';
import { type SuiteResults, toMarkdown } from './suite/report.js';
import { targetsMarkdown } from './suite/targets.js';

/** What the work tree held besides the commit when the recorded run was made (said when the commit is marked dirty). */
const DIRTY_NOTE = process.env.BENCH_DIRTY_NOTE ?? 'the work tree differed from the commit';

const file = process.argv.slice(2).find((a) => a.endsWith('.json'));
if (!file) throw new Error('usage: vite-node bench/benchmarks-md.ts RESULTS.json');
const res = JSON.parse(readFileSync(file, 'utf8')) as SuiteResults;
const dirty = res.commit.endsWith('+dirty') ? `(+dirty: ${DIRTY_NOTE}.)\n\n` : '';
const table = toMarkdown(res).replace(/^# .*\n/, '');
process.stdout.write(`# Benchmarks

Measured with \`${res.command}\` on **${res.adapter.description}** (${res.adapter.backend}), commit ${res.commit}, ${res.date}.
Ours and the peers run in one process on the same Dawn adapter; every figure is the time per call to GPU
completion (median of repeats; within a case the engines' repeats are interleaved). Ratios are peer time / our
time: above 1, ours is faster. Load average ${res.loadAverage.start.toFixed(1)} → ${res.loadAverage.end.toFixed(1)}, the benchmark's own threads
included. Absolute figures vary up to 2× between runs on one box and up to 3× between boxes;
ratios from one run are the comparable part, and the notes below give their range over several runs.

${dirty}Reproduce: \`npm run bench:peers:install\`, then \`${res.command}\`; results go to \`bench/results/\`.
This file: \`npx vite-node bench/benchmarks-md.ts ${file}\`.

## Targets of issue #10 on this adapter

${targetsMarkdown(res)}

## All cases
${table}`);
