/**
 * The actions behind `rae train-decoder`, `train-dit`, `sample`, `report` and `demo`: resolve the
 * configuration, take the run's lock (training only), run the stage, record the command in
 * run.json and rewrite report.html.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DeviceLostError } from '../gpu/errors.js';
import { init, type Runtime, shutdown } from '../gpu/runtime.js';
import { writeReport } from '../report/report.js';
import type { ConfigPatch, PresetName, RunConfig } from '../train/config.js';
import { loadData, loadEncoder } from '../train/context.js';
import { closeSharedDecodePools, defaultDataSource } from '../train/data/index.js';
import { DeviceLostDuringTrainingError, type LoopResult, oneLine } from '../train/loop.js';
import { acquireLock, type CommandRecord, updateRunInfo } from '../train/run-folder.js';
import { sampleRun } from '../train/sample.js';
import { trainDecoderStage } from '../train/stage1.js';
import { trainDiTStage } from '../train/stage2.js';
import { evaluateRun } from '../eval/run-eval.js';
import { ensureCachedMae } from './mae-cache.js';
import { probeIntoRun } from './probe-command.js';
import { type CommonFlags, resolveConfig, writeConfig } from './options.js';

const defaultData = () => defaultDataSource().source;

/** A CPU implementation of WebGPU (lavapipe, SwiftShader, WARP), as the runtime's capabilities say. */
export function isSoftwareAdapter(rt: Runtime): boolean {
  return rt.caps.software !== null;
}

export function recordAdapter(runDir: string, rt: Runtime): void {
  const a = rt.adapterSummary;
  updateRunInfo(runDir, (info) => {
    info.adapter = { description: a.description || a.device, backend: a.backend, software: isSoftwareAdapter(rt) };
  });
}

/** Appends this command to run.json; the returned function completes its record. */
export function beginCommand(runDir: string, command: string): (fill: Partial<CommandRecord>) => void {
  const startedAt = new Date();
  const argv = process.argv.slice(2);
  let index = -1;
  updateRunInfo(runDir, (info) => {
    index = info.commands.push({ command, argv, startedAt: startedAt.toISOString() }) - 1;
  });
  return (fill) =>
    updateRunInfo(runDir, (info) => {
      const rec = info.commands[index] ?? { command, argv, startedAt: startedAt.toISOString() };
      Object.assign(rec, fill, { endedAt: new Date().toISOString(), seconds: (Date.now() - startedAt.getTime()) / 1000 });
      info.commands[index] = rec;
    });
}

export async function refreshReport(runDir: string, quiet = false): Promise<string | undefined> {
  try {
    const file = await writeReport(runDir);
    if (!quiet) console.log(`report → ${file}`);
    return file;
  } catch (e) {
    console.error(`rae: could not write the report (${e instanceof Error ? e.message : e}); the run itself is fine`);
    return undefined;
  }
}

export function stageMessage(stage: string, runDir: string, r: LoopResult, command: string): void {
  if (r.interrupted) {
    console.log(
      `${stage} stopped at step ${r.done}; checkpoint ${r.lastCheckpoint ? path.relative(process.cwd(), r.lastCheckpoint) : '(none)'} written. Continue with: rae ${command} --run ${runDir} --resume`,
    );
  } else {
    console.log(`${stage}: ${r.done} steps, final loss ${r.lastLoss.toFixed(4)}, ${r.imagesPerSecond.toFixed(1)} images/s`);
  }
}

/**
 * A lost device (driver reset, GPU removed, out of device memory at the driver level) cannot be
 * recovered in this process, but the run can: the error gains the exact command to continue it.
 */
export function withResumeHint(e: unknown, command: string, runDir: string): unknown {
  if (!(e instanceof DeviceLostDuringTrainingError || e instanceof DeviceLostError)) return e;
  const what = e instanceof DeviceLostError ? `the GPU device was lost (${oneLine(e)})` : e.message;
  return new Error(`${what}. Continue with: rae ${command} --run ${runDir} --resume`);
}

export interface StageFlags extends CommonFlags {
  run: string;
}

async function trainCommand(command: 'train-decoder' | 'train-dit', flags: StageFlags, patch: ConfigPatch): Promise<number> {
  const runDir = flags.run;
  const config = resolveConfig(runDir, flags, patch, defaultData);
  fs.mkdirSync(runDir, { recursive: true });
  // The lock first: a command refused by it must not touch the run's config.json.
  const release = acquireLock(runDir, `rae ${command}`);
  writeConfig(runDir, config);
  const rt = await init();
  try {
    recordAdapter(runDir, rt);
    const end = beginCommand(runDir, command);
    const opts = {
      runDir,
      config,
      resume: Boolean(flags.resume),
      debugNanAtStep: flags.debugNanAtStep,
      debugStopAtStep: flags.debugStopAtStep,
      debugLoseDeviceAtStep: flags.debugLoseDeviceAtStep,
      eager: flags.eager,
    };
    try {
      const r = command === 'train-decoder' ? await trainDecoderStage(opts) : await trainDiTStage(opts);
      end({ steps: r.done, imagesPerSecond: r.imagesPerSecond, exit: r.interrupted ? 'interrupted' : 'ok' });
      stageMessage(command === 'train-decoder' ? 'stage 1' : 'stage 2', runDir, r, command);
    } catch (e) {
      end({ exit: `error: ${e instanceof Error ? e.message : e}` });
      throw withResumeHint(e, command, runDir);
    }
    await refreshReport(runDir);
    return 0;
  } finally {
    release();
    await closeSharedDecodePools();
    shutdown();
  }
}

export function trainDecoderCommand(flags: StageFlags): Promise<number> {
  const f = flags as StageFlags & {
    tau?: number;
    noise?: 'uniform' | 'half-normal';
    perceptual?: 'none' | 'l2' | 'cosine';
    perceptualWeight?: number;
    ema?: number;
    evalEvery?: number;
  };
  return trainCommand('train-decoder', flags, {
    decoder: {
      steps: f.steps,
      batch: f.batch,
      lr: f.lr,
      checkpointEvery: f.checkpointEvery,
      keep: f.keep,
      tau: f.tau,
      noise: f.noise,
      perceptual: f.perceptual,
      perceptualWeight: f.perceptualWeight,
      ema: f.ema,
      evalEvery: f.evalEvery,
    },
  });
}

export function trainDiTCommand(flags: StageFlags): Promise<number> {
  const f = flags as StageFlags & {
    model?: 'dit' | 'ditdh';
    hidden?: number[];
    depth?: number[];
    heads?: number[];
    timeDist?: 'uniform' | 'logit-normal';
    shift?: boolean;
    shiftBase?: number;
    labelDropout?: number;
    clip?: number;
    ema?: number;
    allowNarrow?: boolean;
    tokenCache?: boolean;
  };
  return trainCommand('train-dit', flags, {
    dit: {
      steps: f.steps,
      batch: f.batch,
      lr: f.lr,
      checkpointEvery: f.checkpointEvery,
      keep: f.keep,
      kind: f.model,
      hidden: f.hidden,
      depth: f.depth,
      heads: f.heads,
      timeDist: f.timeDist,
      shift: f.shift === false ? false : undefined,
      shiftBase: f.shiftBase,
      labelDropout: f.labelDropout,
      clip: f.clip,
      ema: f.ema,
      allowNarrow: f.allowNarrow,
      tokenCache: f.tokenCache === false ? false : undefined,
    },
  });
}

export interface SampleFlags extends CommonFlags {
  run: string;
  sampler?: 'euler' | 'heun';
  count?: number;
  guidance?: 'none' | 'cfg' | 'auto';
  scale?: number;
  interval?: [number, number];
  guide?: string;
  checkpoint?: string;
  tag?: string;
  rawWeights?: boolean;
}

function samplePatch(f: SampleFlags): ConfigPatch {
  return {
    sample: {
      sampler: f.sampler,
      steps: f.steps,
      count: f.count,
      guidance: f.guidance,
      scale: f.scale,
      interval: f.interval,
      guide: f.guide,
      useEma: f.rawWeights ? false : undefined,
    },
  };
}

export async function sampleCommand(flags: SampleFlags): Promise<number> {
  const runDir = flags.run;
  const config = resolveConfig(runDir, flags, samplePatch(flags), defaultData);
  await init();
  try {
    const end = beginCommand(runDir, 'sample');
    const r = await sampleRun({ runDir, config, checkpoint: flags.checkpoint, tag: flags.tag });
    end({ imagesPerSecond: r.imagesPerSecond, exit: 'ok' });
    console.log(
      `sampled ${r.count} images (${config.sample.sampler}, ${config.sample.steps} steps, guidance ${config.sample.guidance}) in ${r.seconds.toFixed(1)} s → ${r.dir}`,
    );
    await refreshReport(runDir);
    return 0;
  } finally {
    shutdown();
  }
}

export async function reportCommand(flags: { run: string }): Promise<number> {
  const file = await refreshReport(flags.run, true);
  if (!file) return 1;
  console.log(file);
  return 0;
}

export interface DemoFlags extends CommonFlags {
  run?: string;
  decoderSteps?: number;
  ditSteps?: number;
  /** commander's --no-probe / --no-eval. */
  probe?: boolean;
  eval?: boolean;
  /** Linear probe: training and test images. */
  probeImages?: [number, number];
  /** rFID reconstructions and gFID samples (the training reference gets twice as many). */
  evalImages?: number;
}

/**
 * `rae demo`: MAE pretraining of the encoder (cached across demos), stage 1, stage 2, sampling and
 * the report in one run folder, at preset 'cpu' on a software adapter and 'gpu-s' on a real GPU
 * unless --preset says otherwise. --encoder DIR skips the pretraining.
 */
export async function demoCommand(flags: DemoFlags): Promise<number> {
  const t0 = performance.now();
  const rt = await init();
  try {
    const preset: PresetName = flags.preset ?? (isSoftwareAdapter(rt) ? 'cpu' : 'gpu-s');
    const runDir = flags.run ?? path.join('runs', `demo-${new Date().toISOString().replace(/[:.]/g, '-')}`);
    const config: RunConfig = resolveConfig(
      runDir,
      { ...flags, preset },
      {
        decoder: { steps: flags.decoderSteps ?? flags.steps, batch: flags.batch },
        dit: { steps: flags.ditSteps ?? flags.steps, batch: flags.batch },
      },
      defaultData,
    );
    fs.mkdirSync(runDir, { recursive: true });
    const release = acquireLock(runDir, 'rae demo');
    try {
      writeConfig(runDir, config);
      const a = rt.adapterSummary;
      console.log(`rae demo (preset ${preset}) on ${a.description || a.device} (${a.backend}) → ${runDir}`);
      recordAdapter(runDir, rt);
      const end = beginCommand(runDir, 'demo');
      if (!config.encoder.path) {
        // The demo's encoder is an MAE of our own, pretrained once per configuration and cached.
        const endMae = beginCommand(runDir, 'pretrain-encoder');
        const mae = await ensureCachedMae(config, { root: path.join(path.dirname(runDir), 'encoders') });
        endMae({
          steps: mae.result?.done ?? 0,
          imagesPerSecond: mae.result?.imagesPerSecond,
          exit: mae.result?.interrupted ? 'interrupted' : 'ok',
        });
        if (mae.result) stageMessage('MAE pretraining', mae.dir, mae.result, 'demo');
        else console.log(`MAE encoder: reusing ${mae.dir}`);
        if (mae.result?.interrupted) return 0;
        config.encoder.path = mae.dir;
        writeConfig(runDir, config);
      }
      const enc = await loadEncoder(runDir, config);
      console.log(`encoder: ${enc.note}; latent ${enc.grid}×${enc.grid} tokens × ${enc.dim}`);
      const data = await loadData(runDir, config);
      console.log(
        `data: ${data.train.name} from ${config.data.source}: ${data.train.size} training + ${data.heldOut.size} held-out images, ${data.train.classes.length} classes, ${config.data.imageSize}×${config.data.imageSize}`,
      );
      const common = { runDir, config, resume: Boolean(flags.resume), enc, data };
      // Each stage also gets its own record in run.json, with its throughput.
      const end1 = beginCommand(runDir, 'train-decoder');
      const s1 = await trainDecoderStage(common);
      end1({ steps: s1.done, imagesPerSecond: s1.imagesPerSecond, exit: s1.interrupted ? 'interrupted' : 'ok' });
      stageMessage('stage 1', runDir, s1, 'demo');
      if (s1.interrupted) return 0;
      s1.ema.copyTo();
      s1.ema.dispose();
      const end2 = beginCommand(runDir, 'train-dit');
      const s2 = await trainDiTStage(common);
      end2({ steps: s2.done, imagesPerSecond: s2.imagesPerSecond, exit: s2.interrupted ? 'interrupted' : 'ok' });
      stageMessage('stage 2', runDir, s2, 'demo');
      if (s2.interrupted) return 0;
      s2.ema.copyTo();
      s2.ema.dispose();
      const end3 = beginCommand(runDir, 'sample');
      const r = await sampleRun({
        runDir,
        config,
        enc,
        decoder: s1.decoder,
        model: s2.model,
        stats: s2.stats,
        tag: `dit-${String(s2.done).padStart(8, '0')}-${config.sample.sampler}-${config.sample.guidance}`,
      });
      end3({ imagesPerSecond: r.imagesPerSecond, exit: 'ok' });
      console.log(`sampled ${r.count} images in ${r.seconds.toFixed(1)} s → ${r.dir}`);
      if (flags.probe !== false) {
        // The encoder's quality: its linear-probe accuracy, and the same architecture at random
        // initialisation as the baseline (the paper judges encoders this way).
        const [trainImages, testImages] = flags.probeImages ?? (preset === 'tiny' ? [100, 50] : [2000, 1000]);
        const endP = beginCommand(runDir, 'probe');
        await probeIntoRun(runDir, config, { enc, trainImages, testImages });
        await probeIntoRun(runDir, config, { randomInit: true, trainImages, testImages });
        endP({ exit: 'ok' });
      }
      if (flags.eval !== false) {
        // Inception costs seconds per image on a CPU adapter: the tiny preset (tests) takes 2.
        const n = flags.evalImages ?? (preset === 'tiny' ? 2 : isSoftwareAdapter(rt) ? 24 : 1000);
        const endE = beginCommand(runDir, 'eval');
        const ev = await evaluateRun(runDir, { samples: n, reconstructions: n, reference: 2 * n });
        endE({ exit: 'ok' });
        console.log(`eval: ${ev.summary}`);
      }
      const seconds = (performance.now() - t0) / 1000;
      end({ steps: s1.done + s2.done, exit: 'ok' });
      const report = await refreshReport(runDir, true);
      console.log(`done in ${(seconds / 60).toFixed(1)} min; open ${report ? path.resolve(report) : runDir} (${os.hostname()})`);
      return 0;
    } catch (e) {
      throw withResumeHint(e, 'demo', runDir);
    } finally {
      release();
    }
  } finally {
    await closeSharedDecodePools();
    shutdown();
  }
}
