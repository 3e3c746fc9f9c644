/**
 * `rae eval`: image-quality figures through an Inception feature network.
 *   rae eval --a PATH --b PATH   two image sets (folders, flat or with class folders, or archives)
 *   rae eval --run DIR           a training run: rFID of held-out reconstructions, gFID/KID/precision/
 *                                recall of samples vs the training set, PSNR/SSIM; DIR/eval.json and
 *                                a quality section in the run's report
 * `--json FILE` writes the figures. Features come from nsfwjs's InceptionV3 (FIDs comparable within
 * this project only) or, with `--inception FILE`, the standard FID Inception.
 */
import fs from 'node:fs';
import path from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import { init, shutdown } from '../gpu/runtime.js';
import { saveSafetensors } from '../io/safetensors.js';
import { writeReport } from '../report/report.js';
import { compareFeatureSets } from '../eval/compare.js';
import { extractFeatures, FID_INCEPTION_NOTE, loadFeatureNetwork, NSFWJS_NOTE } from '../eval/extract.js';
import { openImageSet } from '../eval/image-set.js';
import { evaluateRun, type RunEvalOptions } from '../eval/run-eval.js';
import { closeSharedDecodePools } from '../train/data/index.js';
import { intArg } from './options.js';

export interface EvalFlags {
  a?: string;
  b?: string;
  run?: string;
  json?: string;
  inception?: string;
  kidSubsets?: number;
  batch?: number;
  samples?: number;
  reconstructions?: number;
  reference?: number;
  saveFeatures?: string;
  seed?: number;
}

const positive = (name: string) => (v: string) => {
  const n = intArg(name)(v);
  if (n < 1) throw new InvalidArgumentError(`${name} must be at least 1`);
  return n;
};

export function registerEvalCommand(program: Command): void {
  program
    .command('eval')
    .description(
      'FID, KID±std, precision/recall (k = 3) between two image sets (--a, --b), or of a training run (--run: rFID, gFID, PSNR/SSIM, added to its report)',
    )
    .option('--a <path>', 'reference (real) images: a folder (flat or class folders) or a .tar/.tar.gz/.tgz of one')
    .option('--b <path>', 'images to compare (generated): same forms as --a')
    .option('--run <dir>', 'a run folder to evaluate (writes DIR/eval.json and its report)')
    .option('--json <file>', 'also write the figures as JSON')
    .option('--inception <file>', 'standard FID Inception weights (pytorch-fid layout, safetensors): FIDs comparable to published ones')
    .option('--kid-subsets <n>', 'KID subsets (default 100)', positive('--kid-subsets'))
    .option('--batch <n>', 'images per Inception forward pass (default 8)', positive('--batch'))
    .option('--samples <n>', '--run: generated images for gFID (sampled if the run has no such set)', positive('--samples'))
    .option('--reconstructions <n>', '--run: held-out images reconstructed for rFID', positive('--reconstructions'))
    .option('--reference <n>', '--run: training images in the gFID reference (features cached per data set)', positive('--reference'))
    .option('--seed <n>', 'seed of the KID subsets and of sampling', intArg('--seed'))
    .option('--save-features <file>', 'write the features of --a and --b (safetensors, F32 [n, 2048] each) to reuse them')
    .action(async (o: EvalFlags) => {
      process.exitCode = await evalCommand(o);
    });
}

export async function evalCommand(f: EvalFlags): Promise<number> {
  const pairMode = f.a !== undefined || f.b !== undefined;
  if (pairMode && f.run) throw new Error('give either --run DIR or --a PATH --b PATH, not both');
  if (!pairMode && !f.run) throw new Error('nothing to evaluate: give --a PATH --b PATH (two image sets) or --run DIR (a training run)');
  if (pairMode && (!f.a || !f.b)) throw new Error(`--${f.a ? 'b' : 'a'} PATH is missing: --a and --b go together`);
  if (pairMode)
    for (const k of ['samples', 'reconstructions', 'reference'] as const)
      if (f[k] !== undefined) throw new Error(`--${k} applies to --run only`);
  // Open (and so check) inputs before the GPU starts: a missing folder is reported at once.
  if (f.inception && !fs.existsSync(f.inception)) throw new Error(`--inception ${f.inception}: no such file`);
  if (f.run) return runMode(f);
  const a = await openImageSet(f.a as string);
  const b = await openImageSet(f.b as string);
  // Counted before any feature is computed: a set too small for every metric fails at once.
  for (const [flag, where, set] of [
    ['--a', f.a, a],
    ['--b', f.b, b],
  ] as const) {
    if (set.count < 2)
      throw new Error(
        `${flag} ${where}: ${set.count} image${set.count === 1 ? '' : 's'}; FID and KID need at least 2 per set (precision/recall 4)`,
      );
  }
  await init();
  try {
    const t0 = performance.now();
    const net = loadFeatureNetwork({ inception: f.inception });
    try {
      console.log(`rae eval: ${a.count} images in ${f.a}, ${b.count} in ${f.b}; features: ${net.id}`);
      const fa = await extractFeatures(a, net, { batch: f.batch, label: 'A' });
      const fb = await extractFeatures(b, net, { batch: f.batch, label: 'B' });
      if (f.saveFeatures)
        saveSafetensors(f.saveFeatures, {
          a: { shape: [fa.count, fa.dim], data: fa.data as Float32Array },
          b: { shape: [fb.count, fb.dim], data: fb.data as Float32Array },
        });
      const r = compareFeatureSets(fa, fb, { a: `A (${f.a})`, b: `B (${f.b})` }, { kidSubsets: f.kidSubsets, seed: f.seed });
      const seconds = (performance.now() - t0) / 1000;
      for (const w of r.warnings) console.log(`warning: ${w}`);
      const p = (v: number | null, d = 4) => (v === null ? 'n/a' : v.toFixed(d));
      console.log(
        `FID ${r.fid.toFixed(3)}  KID ${r.kid.toExponential(3)} ± ${r.kidStd.toExponential(2)}  precision ${p(r.precision)}  recall ${p(r.recall)}  (A ${r.counts.a}, B ${r.counts.b} images; ${seconds.toFixed(1)} s)`,
      );
      console.log(net.comparable ? FID_INCEPTION_NOTE : NSFWJS_NOTE);
      if (f.json) {
        const out = {
          ...r,
          a: f.a,
          b: f.b,
          featureNetwork: net.id,
          weightsSha256: net.weightsSha256,
          comparable: net.comparable,
          note: net.comparable ? FID_INCEPTION_NOTE : NSFWJS_NOTE,
          seconds,
        };
        fs.mkdirSync(path.dirname(path.resolve(f.json)), { recursive: true });
        fs.writeFileSync(f.json, `${JSON.stringify(out, null, 2)}\n`);
      }
      return 0;
    } finally {
      net.dispose();
    }
  } finally {
    await Promise.all([a.close(), b.close()]);
    shutdown();
  }
}

async function runMode(f: EvalFlags): Promise<number> {
  const runDir = f.run as string;
  if (!fs.existsSync(path.join(runDir, 'config.json'))) throw new Error(`--run ${runDir}: not a run folder (no config.json)`);
  await init();
  try {
    const opts: RunEvalOptions = {
      samples: f.samples,
      reconstructions: f.reconstructions,
      reference: f.reference,
      batch: f.batch,
      inception: f.inception,
      kidSubsets: f.kidSubsets,
      seed: f.seed,
    };
    const r = await evaluateRun(runDir, opts);
    for (const w of r.warnings) console.log(`warning: ${w}`);
    console.log(r.summary);
    console.log(`→ ${path.join(runDir, 'eval.json')}`);
    if (f.json) fs.writeFileSync(f.json, `${JSON.stringify(r.json, null, 2)}\n`);
    try {
      console.log(`report → ${await writeReport(runDir)}`);
    } catch (e) {
      console.error(`rae: could not write the report (${e instanceof Error ? e.message : e}); eval.json is written`);
    }
    return 0;
  } finally {
    await closeSharedDecodePools();
    shutdown();
  }
}
