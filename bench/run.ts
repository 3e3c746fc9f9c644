/**
 * Benchmark entry: `npm run bench -- [runtime] [matmul] [attention]` (all when none named).
 * Prints results and appends them, with the adapter's name, to bench/results/<adapter>-<name>.md.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { init, runtime, shutdown } from '../src/gpu/runtime.js';
import { printRuntimeBench } from './runtime.js';
import { benchTrainStep } from './train-step.js';
import { printMatmulBench } from './matmul.js';
import { printAttentionBench } from './attention.js';
import { printConvBench } from './conv.js';

const BENCHES: Record<string, () => Promise<string>> = {
  runtime: printRuntimeBench,
  'train-step': benchTrainStep,
  matmul: printMatmulBench,
  attention: printAttentionBench,
  conv: printConvBench,
};

async function main(): Promise<void> {
  const names = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const chosen = names.length ? names : Object.keys(BENCHES);
  for (const n of chosen) if (!BENCHES[n]) throw new Error(`bench: unknown benchmark '${n}' (have ${Object.keys(BENCHES).join(', ')})`);
  await init({ profile: process.env.RAE_PROFILE === '1' });
  const s = runtime().adapterSummary;
  const adapter = (s.device || s.description || 'adapter')
    .replace(/[^A-Za-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .toLowerCase();
  mkdirSync('bench/results', { recursive: true });
  for (const n of chosen) {
    const text = await BENCHES[n]();
    console.log(`== ${n}\n${text}\n`);
    appendFileSync(
      path.join('bench/results', `${adapter}-${n}.md`),
      `\n## ${new Date().toISOString()} — ${s.description || s.device} (${s.backend})\n\n\`\`\`\n${text}\n\`\`\`\n`,
    );
  }
  shutdown();
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
