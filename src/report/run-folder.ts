/**
 * Reads what a run folder holds so far (layout in notes/ISSUE8.md: config.json, run.json,
 * metrics.jsonl, reconstructions/, samples/<tag>/). Every part may be missing or damaged — a
 * run killed mid-line, a stage not yet run — so nothing here throws for the folder's content;
 * problems are collected as sentences for the report instead.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/** A user error (the run folder is not there): the CLI prints the message, without a stack. */
export class ReportError extends Error {
  override name = 'ReportError';
}

export interface MetricRow {
  stage: string;
  step: number;
  /** NaN when the logged loss was not a finite number (JSON writes NaN/Inf as null). */
  loss: number;
  lr?: number;
  seconds?: number;
  imagesPerSecond?: number;
  psnr?: number;
  ssim?: number;
  gradNorm?: number;
}

export interface Reconstruction {
  step: number;
  /** Absolute path of the PNG (top row originals, bottom row reconstructions), when present. */
  png?: string;
  psnr?: number;
  ssim?: number;
  count?: number;
}

export interface SampleSet {
  tag: string;
  dir: string;
  step?: number;
  sampler?: string;
  steps?: number;
  guidance?: Record<string, unknown>;
  count?: number;
  weights?: string;
  seed?: number;
  seconds?: number;
  /** Class names by index k (class-<k>.png), as far as the run wrote them. */
  classNames: Map<number, string>;
  grid?: string;
  classGrids: { k: number; png: string }[];
}

export interface CommandTiming {
  command: string;
  argv?: string[];
  startedAt?: string;
  endedAt?: string;
  seconds?: number;
  steps?: number;
  imagesPerSecond?: number;
  /** How the command ended when not normally (e.g. interrupted), as the run recorded it. */
  exit?: string;
}

export interface RunFolder {
  dir: string;
  name: string;
  config?: Record<string, unknown>;
  adapter?: Record<string, unknown>;
  data?: Record<string, unknown>;
  /** Other top-level fields of run.json (e.g. the encoder), shown as they are. */
  otherInfo: Record<string, unknown>;
  commands: CommandTiming[];
  metrics: MetricRow[];
  reconstructions: Reconstruction[];
  samples: SampleSet[];
  /** Damaged or unexpected content, as sentences for the reader. */
  problems: string[];
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

function readJson(file: string, problems: string[]): unknown {
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    problems.push(`${path.basename(file)} could not be read as JSON (${(e as Error).message}).`);
    return undefined;
  }
}

function readMetrics(file: string, problems: string[]): MetricRow[] {
  if (!existsSync(file)) return [];
  const lines = readFileSync(file, 'utf8').split('\n');
  // A resumed run logs again the steps after its checkpoint: the later line for a (stage, step) wins.
  const rows = new Map<string, MetricRow>();
  let bad = 0;
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      bad++;
      if (bad <= 3) problems.push(`metrics.jsonl line ${i + 1} is not valid JSON (a run interrupted while writing?); skipped.`);
      return;
    }
    const stage = isRecord(v) ? str(v.stage) : undefined;
    const step = isRecord(v) ? num(v.step) : undefined;
    if (!isRecord(v) || stage === undefined || step === undefined) {
      bad++;
      if (bad <= 3) problems.push(`metrics.jsonl line ${i + 1} has no "stage" and "step"; skipped.`);
      return;
    }
    rows.set(`${stage}\u0000${step}`, {
      stage,
      step,
      loss: num(v.loss) ?? Number.NaN,
      lr: num(v.lr),
      seconds: num(v.seconds),
      imagesPerSecond: num(v.imagesPerSecond),
      psnr: num(v.psnr),
      ssim: num(v.ssim),
      gradNorm: num(v.gradNorm),
    });
  });
  if (bad > 3) problems.push(`metrics.jsonl: ${bad} unreadable lines in all.`);
  return [...rows.values()].sort((a, b) => a.step - b.step);
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

function readReconstructions(dir: string, problems: string[]): Reconstruction[] {
  const byStep = new Map<number, Reconstruction>();
  for (const f of listDir(dir)) {
    const m = /^step-(\d+)\.(png|json)$/.exec(f);
    if (!m) continue;
    const step = Number(m[1]);
    const r = byStep.get(step) ?? { step };
    if (m[2] === 'png') r.png = path.join(dir, f);
    else {
      const j = readJson(path.join(dir, f), problems);
      if (isRecord(j)) {
        r.psnr = num(j.psnr);
        r.ssim = num(j.ssim);
        r.count = num(j.count);
      }
    }
    byStep.set(step, r);
  }
  return [...byStep.values()].sort((a, b) => a.step - b.step);
}

/** Class names as the sampler wrote them: a list of names by index, or an object index → name. */
function classNamesOf(v: unknown, fallback: unknown): Map<number, string> {
  const names = new Map<number, string>();
  const take = (src: unknown) => {
    if (Array.isArray(src)) src.forEach((n, k) => typeof n === 'string' && !names.has(k) && names.set(k, n));
    else if (isRecord(src))
      for (const [k, n] of Object.entries(src))
        if (/^\d+$/.test(k) && typeof n === 'string' && !names.has(Number(k))) names.set(Number(k), n);
  };
  take(v);
  take(fallback);
  return names;
}

function readSamples(dir: string, dataClasses: unknown, problems: string[]): SampleSet[] {
  const sets: SampleSet[] = [];
  for (const tag of listDir(dir)) {
    const tagDir = path.join(dir, tag);
    if (!statSync(tagDir).isDirectory()) continue;
    const info = readJson(path.join(tagDir, 'samples.json'), problems);
    const j = isRecord(info) ? info : {};
    const files = listDir(tagDir);
    const classGrids = files
      .map((f) => [f, /^class-(\d+)\.png$/.exec(f)] as const)
      .filter((e): e is readonly [string, RegExpExecArray] => e[1] !== null)
      .map(([f, m]) => ({ k: Number(m[1]), png: path.join(tagDir, f) }))
      .sort((a, b) => a.k - b.k);
    sets.push({
      tag,
      dir: tagDir,
      step: num(j.step),
      sampler: str(j.sampler),
      steps: num(j.steps),
      guidance: isRecord(j.guidance) ? j.guidance : undefined,
      count: num(j.count),
      weights: str(j.weights),
      seed: num(j.seed),
      seconds: num(j.seconds),
      classNames: classNamesOf(j.classes, dataClasses),
      grid: files.includes('grid.png') ? path.join(tagDir, 'grid.png') : undefined,
      classGrids,
    });
  }
  // Newest first: by the step it was sampled at, then by name.
  return sets.sort((a, b) => (b.step ?? -1) - (a.step ?? -1) || a.tag.localeCompare(b.tag));
}

function readCommands(v: unknown): CommandTiming[] {
  if (!Array.isArray(v)) return [];
  return v.filter(isRecord).map((c) => ({
    command: str(c.command) ?? '?',
    argv: Array.isArray(c.argv) ? c.argv.map(String) : undefined,
    startedAt: str(c.startedAt),
    endedAt: str(c.endedAt),
    seconds: num(c.seconds),
    steps: num(c.steps),
    imagesPerSecond: num(c.imagesPerSecond),
    exit: str(c.exit),
  }));
}

export function readRunFolder(dir: string): RunFolder {
  const abs = path.resolve(dir);
  if (!existsSync(abs)) throw new ReportError(`run folder ${abs} does not exist`);
  if (!statSync(abs).isDirectory()) throw new ReportError(`run folder ${abs} is not a directory`);
  const problems: string[] = [];
  const config = readJson(path.join(abs, 'config.json'), problems);
  const run = readJson(path.join(abs, 'run.json'), problems);
  const r = isRecord(run) ? run : {};
  const data = isRecord(r.data) ? r.data : undefined;
  return {
    dir: abs,
    name: path.basename(abs),
    config: isRecord(config) ? config : undefined,
    adapter: isRecord(r.adapter) ? r.adapter : undefined,
    data,
    otherInfo: Object.fromEntries(Object.entries(r).filter(([k]) => !['adapter', 'data', 'commands'].includes(k))),
    commands: readCommands(r.commands),
    metrics: readMetrics(path.join(abs, 'metrics.jsonl'), problems),
    reconstructions: readReconstructions(path.join(abs, 'reconstructions'), problems),
    samples: readSamples(path.join(abs, 'samples'), data?.classes, problems),
    problems,
  };
}
