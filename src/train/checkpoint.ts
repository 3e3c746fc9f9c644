/**
 * Checkpoints of a training stage: `DIR/checkpoints/<stage>-<step:08d>/` holding
 * model.safetensors, ema.safetensors, optim.safetensors and state.json.
 *
 * Atomicity: everything is written into a hidden temporary folder next to the final one, each
 * file fsynced, then the folder is renamed into place (and the parent fsynced). A folder with a
 * final name is therefore always complete; a crash leaves at most a `.tmp-*` folder, which
 * loaders ignore and the next save removes. Old checkpoints are retired by renaming them to
 * `.trash-*` before deleting, so a kill during deletion never leaves a half-deleted checkpoint
 * under a final name.
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadSafetensors, serializeSafetensors, type WriteTensor } from '../io/safetensors.js';
import type { Module } from '../nn/module.js';
import type { AdamW, EMA } from '../nn/optim.js';
import { writeHost } from '../tensor/copy.js';
import { type GeneratorState, toArray } from '../tensor/creation.js';
import type { Tensor } from '../tensor/tensor.js';
import { describeDifferences } from './config.js';

export type Stage = 'decoder' | 'dit' | 'mae';

export interface CheckpointState {
  stage: Stage;
  step: number;
  fingerprint: string;
  /** The model-shaping configuration (config.ts modelShape), to explain a mismatch. */
  shape: Record<string, unknown>;
  generator: GeneratorState;
  loader: { seed: number; epoch: number; position: number };
  optimizerSteps: number;
  savedAt: string;
}

export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

const NAME = /^(decoder|dit|mae)-(\d{8})$/;
export const checkpointName = (stage: Stage, step: number) => `${stage}-${String(step).padStart(8, '0')}`;

/** Writes a file and fsyncs it. Tests replace this to simulate a full disk. */
export type FileWriter = (file: string, bytes: Uint8Array) => void;
export const fsyncWrite: FileWriter = (file, bytes) => {
  const fd = fs.openSync(file, 'wx');
  try {
    for (let done = 0; done < bytes.length; ) done += fs.writeSync(fd, bytes, done, bytes.length - done);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
};

function fsyncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // Some file systems refuse fsync on directories; the rename is still atomic there.
  }
}

async function hostTensors(named: [string, Tensor][]): Promise<Map<string, WriteTensor>> {
  const out = new Map<string, WriteTensor>();
  for (const [k, t] of named) out.set(k, { shape: [...t.shape], data: (await toArray(t)) as Float32Array });
  return out;
}

export interface SaveInput {
  runDir: string;
  state: Omit<CheckpointState, 'savedAt'>;
  model: Module;
  ema: EMA;
  optimizer: AdamW;
  keep: number;
  write?: FileWriter;
}

/** Saves a checkpoint atomically and prunes the stage's older ones down to `keep`. */
export async function saveCheckpoint(input: SaveInput): Promise<string> {
  const { runDir, state, model, ema, optimizer } = input;
  const write = input.write ?? fsyncWrite;
  const root = path.join(runDir, 'checkpoints');
  fs.mkdirSync(root, { recursive: true });
  const name = checkpointName(state.stage, state.step);
  const final = path.join(root, name);
  const tmp = path.join(root, `.tmp-${name}-${process.pid}`);
  // Read everything back from the GPU before touching the disk.
  const params = model.trainableParameters();
  const named = model.namedParameters().filter(([, t]) => t.requiresGrad);
  const modelBytes = serializeSafetensors(await hostTensors(named));
  const emaBytes = serializeSafetensors(await hostTensors(named.map(([k], i) => [k, ema.shadow[i]] as [string, Tensor])));
  const moments: [string, Tensor][] = [];
  for (const [i, s] of optimizer.moments()) {
    moments.push([`${named[i][0]}.exp_avg`, s.m], [`${named[i][0]}.exp_avg_sq`, s.v]);
  }
  if (params.length !== named.length) throw new CheckpointError('internal: parameter lists disagree');
  const optimBytes = serializeSafetensors(await hostTensors(moments));
  const full: CheckpointState = { ...state, savedAt: new Date().toISOString() };
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp);
  try {
    write(path.join(tmp, 'model.safetensors'), modelBytes);
    write(path.join(tmp, 'ema.safetensors'), emaBytes);
    write(path.join(tmp, 'optim.safetensors'), optimBytes);
    // state.json last: its presence marks the folder as finished even before the rename.
    write(path.join(tmp, 'state.json'), new TextEncoder().encode(`${JSON.stringify(full, null, 2)}\n`));
    fsyncDir(tmp);
    if (fs.existsSync(final)) retire(root, final);
    fs.renameSync(tmp, final);
    fsyncDir(root);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOSPC' ? 'the disk is full' : e instanceof Error ? e.message : String(e);
    const prev = latestCheckpoint(runDir, state.stage);
    throw new CheckpointError(
      `could not write checkpoint ${name} (${why}); ${prev ? `the previous checkpoint ${path.basename(prev)} is intact` : 'no earlier checkpoint exists'}`,
    );
  }
  prune(root, state.stage, input.keep);
  return final;
}

function retire(root: string, dir: string): void {
  const trash = path.join(root, `.trash-${path.basename(dir)}-${process.pid}-${Date.now()}`);
  fs.renameSync(dir, trash);
  fs.rmSync(trash, { recursive: true, force: true });
}

function prune(root: string, stage: Stage, keep: number): void {
  const mine = listCheckpoints(path.dirname(root), stage);
  for (const dir of mine.slice(0, Math.max(0, mine.length - keep))) retire(root, dir);
  // Leftovers of interrupted saves or deletions.
  for (const e of fs.readdirSync(root)) {
    if (e.startsWith('.trash-') || (e.startsWith('.tmp-') && !e.endsWith(`-${process.pid}`)))
      fs.rmSync(path.join(root, e), { recursive: true, force: true });
  }
}

/** Finished checkpoints of a stage, oldest first. */
export function listCheckpoints(runDir: string, stage: Stage): string[] {
  const root = path.join(runDir, 'checkpoints');
  if (!fs.existsSync(root)) return [];
  return fs
    .readdirSync(root)
    .map((e) => NAME.exec(e))
    .filter((m): m is RegExpExecArray => m !== null && m[1] === stage && fs.existsSync(path.join(root, m[0], 'state.json')))
    .sort((a, b) => Number(a[2]) - Number(b[2]))
    .map((m) => path.join(root, m[0]));
}

export function latestCheckpoint(runDir: string, stage: Stage): string | undefined {
  return listCheckpoints(runDir, stage).at(-1);
}

export interface LoadedCheckpoint {
  dir: string;
  state: CheckpointState;
  model: Map<string, { shape: number[]; data: Float32Array }>;
  ema: Map<string, { shape: number[]; data: Float32Array }>;
  optim: Map<string, { shape: number[]; data: Float32Array }>;
}

type HostMap = LoadedCheckpoint['model'];
function readTensors(file: string): HostMap {
  const out: HostMap = new Map();
  for (const [k, t] of loadSafetensors(file)) {
    if (!(t.data instanceof Float32Array)) throw new CheckpointError(`${file}: tensor ${k} is not f32`);
    out.set(k, { shape: t.shape, data: t.data });
  }
  return out;
}

/** Reads a checkpoint folder (all of it: a truncated file is an error here, not later). */
export function readCheckpoint(dir: string, what: { optim?: boolean } = {}): LoadedCheckpoint {
  const statePath = path.join(dir, 'state.json');
  if (!fs.existsSync(statePath)) throw new CheckpointError(`${dir}: not a checkpoint (no state.json)`);
  let state: CheckpointState;
  try {
    state = JSON.parse(fs.readFileSync(statePath, 'utf8')) as CheckpointState;
  } catch (e) {
    throw new CheckpointError(`${statePath}: unreadable (${e instanceof Error ? e.message : e})`);
  }
  try {
    return {
      dir,
      state,
      model: readTensors(path.join(dir, 'model.safetensors')),
      ema: readTensors(path.join(dir, 'ema.safetensors')),
      optim: what.optim === false ? new Map() : readTensors(path.join(dir, 'optim.safetensors')),
    };
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    throw new CheckpointError(`${dir}: damaged checkpoint (${e instanceof Error ? e.message : e})`);
  }
}

/** Refuses a checkpoint whose model-shaping configuration differs from the current one. */
export function checkCompatible(ck: LoadedCheckpoint, stage: Stage, fingerprint: string, shape: Record<string, unknown>): void {
  if (ck.state.stage !== stage) throw new CheckpointError(`${ck.dir} is a ${ck.state.stage} checkpoint, not a ${stage} one`);
  if (ck.state.fingerprint === fingerprint) return;
  const diffs = describeDifferences(ck.state.shape, shape);
  throw new CheckpointError(
    `${ck.dir} was made with another model configuration: ${diffs.join('; ') || `fingerprint ${ck.state.fingerprint} ≠ ${fingerprint}`}`,
  );
}

/** Writes the checkpoint's weights into the model (and, if given, EMA and optimizer). */
export function restoreInto(ck: LoadedCheckpoint, model: Module, opts: { ema?: EMA; optimizer?: AdamW; useEma?: boolean } = {}): void {
  const named = model.namedParameters().filter(([, t]) => t.requiresGrad);
  const src = opts.useEma ? ck.ema : ck.model;
  model.loadStateDict(src, { strict: false });
  const missing = named.filter(([k]) => !src.has(k)).map(([k]) => k);
  if (missing.length)
    throw new CheckpointError(
      `${ck.dir}: missing weights ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ` and ${missing.length - 5} more` : ''}`,
    );
  if (opts.ema) {
    named.forEach(([k], i) => {
      const t = ck.ema.get(k);
      if (!t) throw new CheckpointError(`${ck.dir}: ema.safetensors lacks ${k}`);
      writeHost(opts.ema!.shadow[i], t.data);
    });
  }
  if (opts.optimizer) {
    const moments = new Map<number, { m: Float32Array; v: Float32Array }>();
    named.forEach(([k], i) => {
      const m = ck.optim.get(`${k}.exp_avg`);
      const v = ck.optim.get(`${k}.exp_avg_sq`);
      if (m && v) moments.set(i, { m: m.data, v: v.data });
    });
    opts.optimizer.loadMoments(moments, ck.state.optimizerSteps);
  }
}
