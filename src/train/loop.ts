/**
 * The step loop both stages share: progress display, metrics.jsonl, checkpoints every N steps
 * and at the end, SIGINT/SIGTERM (finish the step, checkpoint, stop cleanly), and a NaN/Inf
 * guard that stops before anything bad is saved.
 *
 * No per-step read-back (DESIGN.md): each step's loss is checked on the GPU, where a one-element
 * flag keeps the first step whose loss was not finite; the flag is read before every log line and
 * every checkpoint, so nothing non-finite is ever logged or saved, and the error names that step.
 */
import path from 'node:path';
import cliProgress from 'cli-progress';
import { DeviceLostError } from '../gpu/errors.js';
import { runtime } from '../gpu/runtime.js';
import type { Tensor } from '../tensor/tensor.js';
import { full, toArray, zeros } from '../tensor/creation.js';
import { mapInto } from '../kernels/elementwise.js';
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

/** Bits of a non-finite f32 (exponent all ones); tested on the bits, since fast-math may fold isnan. */
const NON_FINITE = `fn non_finite(x: f32) -> bool { return (bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u; }
fn is_nan(x: f32) -> bool { return non_finite(x) && (bitcast<u32>(x) & 0x007fffffu) != 0u; }`;

/**
 * flag ← the first step (1-based) whose loss is not finite: +step for NaN, −step for ±Inf; 0
 * while all were finite. One dispatch, in place, nothing read back.
 */
function flagNonFinite(loss: Tensor, step: number, flag: Tensor): void {
  mapInto(
    {
      name: 'loss-guard',
      expr: 'select(acc, select(-s0, s0, is_nan(in0)), acc == 0.0 && non_finite(in0))',
      compute: 'f32',
      scalars: [step],
      helpers: NON_FINITE,
      readsOutput: true,
    },
    [loss],
    flag,
  );
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
  // The first non-finite step (see flagNonFinite) and the latest step's loss, on the GPU.
  const flag = zeros([1]).keep();
  let lossT: Tensor | null = null;
  /** Reads the flag: throws naming the step whose loss was not finite. */
  const checkFinite = async () => {
    const v = (await toArray(flag))[0];
    if (v === 0) return;
    const at = Math.abs(v);
    throw new NonFiniteLossError(
      `${spec.stage} loss is ${v > 0 ? 'NaN' : 'infinite'} at step ${at}; stopped without saving. ${lastGood(spec)} (lower --lr, or resume with --resume)`,
    );
  };
  try {
    for (let step = spec.startStep; step < spec.totalSteps; step++) {
      current = step + 1;
      const lr = spec.lrAt(step);
      lossT?.dispose();
      lossT = await spec.step(step, lr);
      if (spec.debugLoseDeviceAtStep === step + 1) await runtime().loseDeviceForTest();
      if (spec.debugNanAtStep === step + 1) {
        lossT.dispose();
        lossT = full([1], Number.NaN);
      }
      flagNonFinite(lossT, step + 1, flag);
      done = step + 1;
      if (spec.debugStopAtStep === done) onSignal('debug stop');
      const logNow = done % spec.logEvery === 0 || done === spec.totalSteps || stopRequested;
      const saveNow = done % spec.checkpointEvery === 0 || done === spec.totalSteps || stopRequested;
      if (logNow || saveNow) {
        await checkFinite();
        lastLoss = (await toArray(lossT))[0];
      }
      const secs = (performance.now() - t0) / 1000;
      const its = (done - spec.startStep) / Math.max(secs, 1e-9);
      if (logNow) {
        const loss = lastLoss;
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
      if (saveNow) {
        lastCheckpoint = await spec.save(done);
        lastSaved = done;
      }
      if (stopRequested) break;
      // Without a read-back per step, the loop itself lets Dawn reclaim finished work.
      await runtime().yieldIfBusy();
    }
    if (lastSaved !== done) {
      await checkFinite();
      lastCheckpoint = await spec.save(done);
    }
  } catch (e) {
    // A checkpoint is read back from the device before any file is written, so a loss during a
    // save leaves the previous checkpoint as the latest; nothing more is tried on the dead device.
    if (e instanceof DeviceLostError) throw new DeviceLostDuringTrainingError(e, spec.stage, current, lastGood(spec));
    throw e;
  } finally {
    lossT?.dispose();
    flag.dispose();
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
