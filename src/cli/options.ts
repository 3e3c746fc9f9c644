/**
 * Options shared by the commands and their mapping onto the run configuration. Precedence:
 * --preset (or, without it, the run's existing config.json, else the 'cpu' preset) < --config
 * FILE < individual flags. Stage-scoped flags (--steps, --batch, --lr, --checkpoint-every) apply
 * to the stage of the command.
 */
import fs from 'node:fs';
import path from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import {
  type ConfigPatch,
  deepMerge,
  fingerprint,
  modelShape,
  parseConfig,
  PRESETS,
  type PresetName,
  presetConfig,
  type RunConfig,
} from '../train/config.js';
import { readJson, RunError, writeFileAtomic } from '../train/run-folder.js';

export const intArg = (name: string) => (v: string) => {
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`${name} must be a non-negative integer`);
  return n;
};
export const numArg = (name: string) => (v: string) => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number`);
  return n;
};
export const listArg = (name: string) => (v: string) => v.split(',').map((x) => intArg(name)(x));
export const pairArg = (name: string) => (v: string) => {
  const p = v.split(',').map((x) => numArg(name)(x));
  if (p.length !== 2) throw new InvalidArgumentError(`${name} must be two numbers, e.g. 0.1,0.9`);
  return p as [number, number];
};

export const intPairArg = (name: string) => (v: string) => {
  const p = listArg(name)(v);
  if (p.length !== 2) throw new InvalidArgumentError(`${name} must be two integers, e.g. 2000,1000`);
  return p as [number, number];
};

export interface CommonFlags {
  run?: string;
  config?: string;
  preset?: PresetName;
  data?: string;
  encoder?: string;
  steps?: number;
  batch?: number;
  lr?: number;
  seed?: number;
  checkpointEvery?: number;
  keep?: number;
  resume?: boolean;
  imageSize?: number;
  maxImages?: number;
  heldOut?: number;
  skipBad?: boolean;
  debugNanAtStep?: number;
  debugStopAtStep?: number;
  debugLoseDeviceAtStep?: number;
  eager?: boolean;
  [k: string]: unknown;
}

/** Options every training-ish command takes. */
export function addCommonOptions(cmd: Command, opts: { runRequired: boolean; stageFlags: boolean }): Command {
  if (opts.runRequired)
    cmd.requiredOption('--run <dir>', 'run folder (created if missing): config.json, checkpoints/, metrics.jsonl, samples/, report.html');
  cmd
    .option('--config <file>', 'JSON configuration (same fields as DIR/config.json); flags override it')
    .addOption(
      new Option(
        '--preset <name>',
        'starting configuration: tiny (seconds, tests), cpu (demo scale), gpu-s / gpu-b (DiT^DH-S/B-like)',
      ).choices(PRESETS),
    )
    .option(
      '--data <path>',
      "images: a folder of class folders, a .tar.gz of one, CIFAR-10 binary batches, or MNIST/Fashion-MNIST IDX files (default: CIFAR-10 from ../shared/datasets, else Debian's Fashion-MNIST)",
    )
    .option(
      '--encoder <dir>',
      'frozen encoder: a local Hugging Face snapshot of facebook/dinov2-with-registers-*, or an MAE run folder of `rae pretrain-encoder` (default: a random DINOv2-with-registers saved in the run; the demo pretrains an MAE)',
    )
    .option('--seed <n>', 'seed of everything random', intArg('--seed'))
    .option('--image-size <n>', 'training image size (ADM centre crop + resize)', intArg('--image-size'))
    .option('--max-images <n>', 'use at most this many training images (seeded subset)', intArg('--max-images'))
    .option('--held-out <n>', 'images held out for evaluation', intArg('--held-out'))
    .option('--skip-bad', 'skip unreadable images (counted in run.json) instead of stopping');
  if (opts.stageFlags) {
    cmd
      .option('--steps <n>', "the stage's total steps; with --resume, training continues up to this step", intArg('--steps'))
      .option('--batch <n>', 'batch size', intArg('--batch'))
      .option('--lr <x>', 'peak learning rate', numArg('--lr'))
      .option('--checkpoint-every <n>', 'write a checkpoint every n steps (and at the end)', intArg('--checkpoint-every'))
      .option('--keep <n>', 'checkpoints of this stage to keep', intArg('--keep'))
      .option('--resume', "continue from the stage's latest checkpoint (exactly: same losses as an uninterrupted run)")
      .option('--eager', 'run each training step op by op instead of compiled (recorded once, replayed); same results, slower')
      // For tests only: force a NaN loss / a clean stop (as on SIGINT) / a lost GPU device at a given step.
      .addOption(new Option('--debug-nan-at-step <n>').argParser(intArg('--debug-nan-at-step')).hideHelp())
      .addOption(new Option('--debug-stop-at-step <n>').argParser(intArg('--debug-stop-at-step')).hideHelp())
      .addOption(new Option('--debug-lose-device-at-step <n>').argParser(intArg('--debug-lose-device-at-step')).hideHelp());
  }
  return cmd;
}

function dataPatch(f: CommonFlags): ConfigPatch {
  return {
    seed: f.seed,
    data: { source: f.data, imageSize: f.imageSize, maxImages: f.maxImages, heldOut: f.heldOut, skipBad: f.skipBad },
    encoder: f.encoder === undefined ? undefined : { path: f.encoder },
  };
}

const CONFIG_FILE = 'config.json';

function readConfigFile(file: string): unknown {
  if (!fs.existsSync(file)) throw new RunError(`--config ${file}: no such file`);
  const v = readJson<Record<string, unknown>>(file);
  if (v && typeof v === 'object') delete v.fingerprint;
  return v;
}

/** The configuration of a command: base, --config FILE, then the command's flag patch. */
export function resolveConfig(runDir: string | undefined, flags: CommonFlags, patch: ConfigPatch, defaultData: () => string): RunConfig {
  const existingFile = runDir ? path.join(runDir, CONFIG_FILE) : undefined;
  let base: RunConfig;
  if (flags.preset) base = presetConfig(flags.preset);
  else if (existingFile && fs.existsSync(existingFile)) base = parseConfig(readConfigFile(existingFile), existingFile);
  else base = presetConfig('cpu');
  let merged: unknown = base;
  if (flags.config) merged = deepMerge(merged, readConfigFile(flags.config));
  merged = deepMerge(merged, dataPatch(flags));
  merged = deepMerge(merged, patch);
  const c = parseConfig(merged, flags.config ?? 'configuration');
  if (!c.data.source) c.data.source = defaultData();
  return c;
}

export function writeConfig(runDir: string, c: RunConfig): void {
  fs.mkdirSync(runDir, { recursive: true });
  const fp = fingerprint({ decoder: modelShape(c, 'decoder'), dit: modelShape(c, 'dit') });
  writeFileAtomic(path.join(runDir, CONFIG_FILE), `${JSON.stringify({ ...c, fingerprint: fp }, null, 2)}\n`);
}
