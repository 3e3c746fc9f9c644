/**
 * The step loop both stages share: progress display, metrics.jsonl, checkpoints every N steps
 * and at the end, SIGINT/SIGTERM (finish the step, checkpoint, stop cleanly), and a NaN/Inf
 * guard that stops before anything bad is saved.
 */
import path from 'node:path';
import cliProgress from 'cli-progress';
import { DeviceLostError } from '../gpu/errors.js';
import { runtime } from '../gpu/runtime.js';
import type { Tensor } from '../tensor/tensor.js';
import { toArray } from '../tensor/creation.js';
import { latestCheckpoint } from './checkpoint.js';
import { appendMetric, type MetricRecord } from './run-folder.js';

export class NonFiniteLossError extends Error {
  override name = 'NonFiniteLossError';
}

/** Dawn's reason and message of a loss, on one line. */
export const oneLine = (lost: DeviceLostError) => `${lost.reason}: ${lost.detail}`.replace(/\s*\n\s*/g, ' ');

/**
 * The device was lost during a step: nothing of that step (or later) was saved, and no save was
 * attempted with the dead device. The message names the step and the checkpoint to resume from.
 */
export class DeviceLostDuringTrainingError extends Error {
  override name = 'DeviceLostDuringTrainingError';
  constructor(
    readonly lost: DeviceLostError,
    readonly stage: MetricRecord['stage'],
    readonly step: number,
    lastGoodCheckpoint: string,
  ) {
    super(`the GPU device was lost at ${stage} step ${step} (${oneLine(lost)}); stopped without saving. ${lastGoodCheckpoint}`);
  }
}

export interface LoopSpec {
  stage: MetricRecord['stage'];
  label: string;
  runDir: string;
  startStep: number;
  totalSteps: number;
  logEvery: number;
  checkpointEvery: number;
  imagesPerStep: number;
  lrAt(step: number): number;
  /** Runs step `step` (0-based) at learning rate `lr`; returns the 1-element loss. */
  step(step: number, lr: number): Promise<Tensor>;
  /** Saves a checkpoint after `done` steps. */
  save(done: number): Promise<string>;
  /** Extra metrics at a logged step (e.g. PSNR/SSIM every evalEvery steps). */
  extra?(done: number): Promise<Record<string, number>>;
  /** Tests: the loss at this step (1-based) is replaced by NaN. */
  debugNanAtStep?: number;
  /** Tests: behave as if SIGINT arrived during this step (1-based). */
  debugStopAtStep?: number;
  /** Tests: the device is lost (destroyed) during this step (1-based), after its work is recorded. */
  debugLoseDeviceAtStep?: number;
  quiet?: boolean;
}

export interface LoopResult {
  done: number;
  interrupted: boolean;
  seconds: number;
  imagesPerSecond: number;
  lastLoss: number;
  lastCheckpoint?: string;
}

/** Display: a cli-progress bar on a terminal, plain lines otherwise. */
class Display {
  private bar: cliProgress.SingleBar | null = null;
  constructor(
    private spec: LoopSpec,
    tty: boolean,
  ) {
    if (tty && !spec.quiet) {
      this.bar = new cliProgress.SingleBar(
        {
          format: `${spec.label} |{bar}| {value}/{total} | {its} it/s | {ips} img/s | ETA {eta_formatted} | {losses}`,
          hideCursor: true,
          etaBuffer: 20,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(spec.totalSteps, spec.startStep, { its: '-', ips: '-', losses: '' });
    }
  }
  update(done: number, its: number, ips: number, etaSeconds: number, losses: string): void {
    if (this.bar) this.bar.update(done, { its: its.toFixed(2), ips: ips.toFixed(1), losses });
    else if (!this.spec.quiet) {
      console.log(
        `${this.spec.label} ${done}/${this.spec.totalSteps}  ${its.toFixed(2)} it/s  ${ips.toFixed(1)} img/s  eta ${Math.round(etaSeconds)}s  ${losses}`,
      );
    }
  }
  stop(): void {
    this.bar?.stop();
  }
}

function lastGood(spec: LoopSpec): string {
  const latest = latestCheckpoint(spec.runDir, spec.stage);
  return latest ? `The last good checkpoint ${path.basename(latest)} is kept` : 'No checkpoint of this stage exists yet';
}

const fmt = (v: number) => (Math.abs(v) < 1e-3 && v !== 0 ? v.toExponential(3) : v.toFixed(4));

export async function runLoop(spec: LoopSpec): Promise<LoopResult> {
  let stopRequested = false;
  const onSignal = (sig: string) => {
    if (stopRequested) return;
    stopRequested = true;
    if (!spec.quiet) console.error(`\n${sig}: finishing the current step, then saving a checkpoint`);
  };
  const sigint = () => onSignal('SIGINT');
  const sigterm = () => onSignal('SIGTERM');
  process.on('SIGINT', sigint);
  process.on('SIGTERM', sigterm);
  const display = new Display(spec, Boolean(process.stdout.isTTY));
  const t0 = performance.now();
  let done = spec.startStep;
  let lastLoss = Number.NaN;
  let lastCheckpoint: string | undefined;
  let lastSaved = spec.startStep;
  // The 1-based step being run (or saved), named if the device is lost.
  let current = spec.startStep;
  try {
    for (let step = spec.startStep; step < spec.totalSteps; step++) {
      current = step + 1;
      const lr = spec.lrAt(step);
      const lossT = await spec.step(step, lr);
      if (spec.debugLoseDeviceAtStep === step + 1) await runtime().loseDeviceForTest();
      // Read every step: a NaN must stop the run at the step it appears, before a checkpoint.
      let loss = (await toArray(lossT))[0];
      lossT.dispose();
      if (spec.debugNanAtStep === step + 1) loss = Number.NaN;
      if (!Number.isFinite(loss)) {
        throw new NonFiniteLossError(
          `${spec.stage} loss is ${loss} at step ${step + 1}; stopped without saving. ${lastGood(spec)} (lower --lr, or resume with --resume)`,
        );
      }
      lastLoss = loss;
      done = step + 1;
      if (spec.debugStopAtStep === done) onSignal('debug stop');
      const secs = (performance.now() - t0) / 1000;
      const its = (done - spec.startStep) / Math.max(secs, 1e-9);
      if (done % spec.logEvery === 0 || done === spec.totalSteps || stopRequested) {
        const extra = spec.extra ? await spec.extra(done) : {};
        const rec: MetricRecord = {
          stage: spec.stage,
          step: done,
          loss,
          lr,
          seconds: secs,
          imagesPerSecond: its * spec.imagesPerStep,
          ...extra,
        };
        appendMetric(spec.runDir, rec);
        const shown = [`loss ${fmt(loss)}`, `lr ${lr.toExponential(2)}`, ...Object.entries(extra).map(([k, v]) => `${k} ${fmt(v)}`)].join(
          '  ',
        );
        display.update(done, its, its * spec.imagesPerStep, (spec.totalSteps - done) / Math.max(its, 1e-9), shown);
      }
      if (done % spec.checkpointEvery === 0 || done === spec.totalSteps || stopRequested) {
        lastCheckpoint = await spec.save(done);
        lastSaved = done;
      }
      if (stopRequested) break;
    }
    if (lastSaved !== done) lastCheckpoint = await spec.save(done);
  } catch (e) {
    // A checkpoint is read back from the device before any file is written, so a loss during a
    // save leaves the previous checkpoint as the latest; nothing more is tried on the dead device.
    if (e instanceof DeviceLostError) throw new DeviceLostDuringTrainingError(e, spec.stage, current, lastGood(spec));
    throw e;
  } finally {
    display.stop();
    process.off('SIGINT', sigint);
    process.off('SIGTERM', sigterm);
  }
  const seconds = (performance.now() - t0) / 1000;
  const steps = done - spec.startStep;
  return {
    done,
    interrupted: stopRequested && done < spec.totalSteps,
    seconds,
    imagesPerSecond: (steps * spec.imagesPerStep) / Math.max(seconds, 1e-9),
    lastLoss,
    lastCheckpoint,
  };
}
