/**
 * The run folder: its lock (one training command at a time), `config.json`, `run.json` (adapter,
 * data, one entry per command) and `metrics.jsonl`. Small JSON files are replaced atomically
 * (write a temporary file, fsync, rename) so a crash never leaves half a file.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export class RunError extends Error {
  override name = 'RunError';
}

export function writeFileAtomic(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

export function readJson<T>(file: string): T | undefined {
  if (!fs.existsSync(file)) return undefined;
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch (e) {
    throw new RunError(`${file}: not valid JSON (${e instanceof Error ? e.message : e})`);
  }
}

interface LockInfo {
  pid: number;
  host: string;
  command: string;
  startedAt: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes `DIR/.lock` for a training command. A lock left by a dead process on this host is stale
 * and taken over; a live holder (or one on another host, which cannot be checked) is an error
 * that names it. Returns the release function (also run on process exit).
 */
export function acquireLock(runDir: string, command: string): () => void {
  const file = path.join(runDir, '.lock');
  const me: LockInfo = { pid: process.pid, host: os.hostname(), command, startedAt: new Date().toISOString() };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, JSON.stringify(me), { flag: 'wx' });
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        try {
          const cur = JSON.parse(fs.readFileSync(file, 'utf8')) as LockInfo;
          if (cur.pid === me.pid && cur.host === me.host) fs.rmSync(file, { force: true });
        } catch {
          // Already gone.
        }
      };
      process.once('exit', release);
      return release;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let holder: LockInfo | undefined;
    try {
      holder = JSON.parse(fs.readFileSync(file, 'utf8')) as LockInfo;
    } catch {
      holder = undefined; // A torn lock file: its writer died mid-write.
    }
    const stale = !holder || (holder.host === me.host && !alive(holder.pid));
    if (!stale) {
      throw new RunError(
        `run folder ${runDir} is in use by '${holder!.command}' (pid ${holder!.pid} on ${holder!.host}, since ${holder!.startedAt}); wait for it, or delete ${file} if that process is gone`,
      );
    }
    fs.rmSync(file, { force: true });
  }
  throw new RunError(`could not take the lock ${file}`);
}

export interface MetricRecord {
  stage: 'decoder' | 'dit' | 'mae';
  step: number;
  loss: number;
  lr: number;
  seconds: number;
  imagesPerSecond?: number;
  psnr?: number;
  ssim?: number;
  gradNorm?: number;
  [k: string]: unknown;
}

export function appendMetric(runDir: string, rec: MetricRecord): void {
  fs.appendFileSync(path.join(runDir, 'metrics.jsonl'), `${JSON.stringify(rec)}\n`);
}

export function readMetrics(runDir: string): MetricRecord[] {
  const file = path.join(runDir, 'metrics.jsonl');
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as MetricRecord];
      } catch {
        return []; // A line torn by a kill.
      }
    });
}

/**
 * On resume from `step`, drops the stage's records logged after it (by the interrupted process),
 * so the log reads as one uninterrupted run.
 */
export function truncateMetrics(runDir: string, stage: MetricRecord['stage'], step: number): void {
  const recs = readMetrics(runDir);
  const kept = recs.filter((r) => r.stage !== stage || r.step <= step);
  if (kept.length === recs.length) return;
  writeFileAtomic(path.join(runDir, 'metrics.jsonl'), kept.map((r) => `${JSON.stringify(r)}\n`).join(''));
}

export interface CommandRecord {
  command: string;
  argv: string[];
  startedAt: string;
  endedAt?: string;
  seconds?: number;
  steps?: number;
  imagesPerSecond?: number;
  exit?: string;
}

export interface RunInfo {
  adapter?: { description: string; backend: string; software: boolean };
  data?: { name: string; source: string; train: number; heldOut: number; skipped: number; classes?: string[] };
  encoder?: string;
  commands: CommandRecord[];
}

export function updateRunInfo(runDir: string, fn: (info: RunInfo) => void): void {
  const file = path.join(runDir, 'run.json');
  const info = readJson<RunInfo>(file) ?? { commands: [] };
  info.commands ??= [];
  fn(info);
  writeFileAtomic(file, `${JSON.stringify(info, null, 2)}\n`);
}
