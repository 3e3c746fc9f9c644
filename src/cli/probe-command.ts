/**
 * `rae probe`: linear-probe accuracy of a frozen encoder (src/eval/probe.ts). The encoder is a
 * DINOv2 snapshot (--encoder), a run's own encoder (--run), or either architecture at random
 * initialisation (--random-init, the baseline). With --run the result is also written to
 * DIR/probe.json (DIR/probe-random.json with --random-init), which the run's report shows.
 */
import fs from 'node:fs';
import path from 'node:path';
import { type Command, Option } from 'commander';
import { PROBE_EPOCHS, type ProbeOptions, type ProbeResult, runProbe } from '../eval/probe.js';
import { init, shutdown } from '../gpu/runtime.js';
import { writeReport } from '../report/report.js';
import { PRESETS, type RunConfig } from '../train/config.js';
import { closeSharedDecodePools, defaultDataSource } from '../train/data/index.js';
import { RunError, writeFileAtomic } from '../train/run-folder.js';
import { type CommonFlags, intArg, numArg, resolveConfig } from './options.js';

const listNumArg = (name: string) => (v: string) => v.split(',').map((x) => numArg(name)(x));

export interface ProbeFlags extends CommonFlags {
  run?: string;
  encoder?: string;
  randomInit?: boolean;
  data?: string;
  trainImages?: number;
  testImages?: number;
  epochs?: number;
  lr?: number;
  weightDecay?: number[];
  json?: string;
}

/** The file a run keeps its probe result in. */
export const probeFile = (runDir: string, randomInit: boolean) => path.join(runDir, randomInit ? 'probe-random.json' : 'probe.json');

export function registerProbeCommand(program: Command): void {
  program
    .command('probe')
    .description(
      "linear-probe accuracy of a frozen encoder: logistic regression on its mean-pooled tokens, held-out top-1 (the paper's encoder measure)",
    )
    .option('--encoder <dir>', 'encoder to probe: a local Hugging Face snapshot of facebook/dinov2-with-registers-* (or an MAE run folder)')
    .option('--run <dir>', "probe the run's own encoder (its config.json); the result goes to DIR/probe.json and its report")
    .option('--random-init', 'the same architecture at a seeded random initialisation (the baseline)')
    .option('--data <path>', 'labelled images (formats as for training; default: the demo data); its test split is used when it has one')
    .addOption(new Option('--preset <name>', 'configuration without --run (image and encoder sizes)').choices(PRESETS))
    .option('--config <file>', 'JSON configuration (same fields as DIR/config.json)')
    .option('--image-size <n>', 'image size fed to the encoder pipeline', intArg('--image-size'))
    .option('--train-images <n>', 'training images (seeded, class-stratified)', intArg('--train-images'), 2000)
    .option('--test-images <n>', 'held-out images', intArg('--test-images'), 1000)
    .option('--epochs <n>', 'full-batch AdamW epochs', intArg('--epochs'), PROBE_EPOCHS)
    .option('--lr <x>', 'AdamW learning rate', numArg('--lr'))
    .option(
      '--weight-decay <list>',
      'weight-decay candidates, chosen on a validation split of the training images',
      listNumArg('--weight-decay'),
    )
    .option('--seed <n>', 'seed of the image subsets and the random initialisation', intArg('--seed'))
    .option('--skip-bad', 'skip unreadable images instead of stopping')
    .option('--json <file>', 'write the result as JSON')
    .action(async (o: ProbeFlags) => {
      process.exitCode = await probeCommand(o);
    });
}

export async function probeCommand(flags: ProbeFlags): Promise<number> {
  if (!flags.encoder && !flags.run && !flags.randomInit)
    throw new RunError('rae probe needs an encoder: --encoder DIR, --run DIR, or --random-init (a random encoder of the preset)');
  if (flags.run && !fs.existsSync(path.join(flags.run, 'config.json')))
    throw new RunError(`--run ${flags.run}: no config.json (not a run folder)`);
  const config = resolveConfig(flags.run, { ...flags, heldOut: undefined, maxImages: undefined }, {}, () => defaultDataSource().source);
  await init();
  try {
    const r = await runProbe({
      config,
      runDir: flags.run,
      randomInit: Boolean(flags.randomInit),
      trainImages: flags.trainImages ?? 2000,
      testImages: flags.testImages ?? 1000,
      epochs: flags.epochs,
      lr: flags.lr,
      weightDecays: flags.weightDecay,
      log: (line) => console.log(line),
    });
    console.log(summary(r));
    if (flags.json) writeFileAtomic(flags.json, `${JSON.stringify(r, null, 2)}\n`);
    if (flags.run) {
      saveProbe(flags.run, r);
      try {
        console.log(`report → ${await writeReport(flags.run)}`);
      } catch (e) {
        console.error(`rae: could not write the report (${e instanceof Error ? e.message : e}); the probe result is saved`);
      }
    }
    return 0;
  } finally {
    await closeSharedDecodePools();
    shutdown();
  }
}

/** Keeps a probe result in the run folder, where the report finds it. */
export function saveProbe(runDir: string, r: ProbeResult): string {
  const file = probeFile(runDir, r.randomInit);
  writeFileAtomic(file, `${JSON.stringify(r, null, 2)}\n`);
  return file;
}

/**
 * The probe step of a pipeline that already holds the run's encoder (`rae demo`): probes it on the
 * run's data, saves DIR/probe.json and prints the summary line. The caller rewrites the report.
 */
export async function probeIntoRun(
  runDir: string,
  config: RunConfig,
  opts: Omit<ProbeOptions, 'config' | 'runDir' | 'log'> & { log?: (line: string) => void },
): Promise<ProbeResult> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const r = await runProbe({ ...opts, config, runDir, log });
  saveProbe(runDir, r);
  log(summary(r));
  return r;
}

export function summary(r: ProbeResult): string {
  const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
  return `probe: top-1 ${pct(r.accuracy)} on ${r.testImages} ${r.split === 'test' ? 'test-split' : 'held-out'} images (train ${pct(r.trainAccuracy)}, chance ${pct(r.chance)}; ${r.classes} classes, ${r.featureDim}-d features, weight decay ${r.weightDecay}); extraction ${r.extractSeconds.toFixed(1)} s, fit ${r.fitSeconds.toFixed(1)} s, total ${r.seconds.toFixed(1)} s (${r.cpuSeconds.toFixed(1)} CPU s)`;
}
