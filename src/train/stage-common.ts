/** Resuming and saving, the same for both stages. */
import path from 'node:path';
import type { Module } from '../nn/module.js';
import type { AdamW, EMA } from '../nn/optim.js';
import { compileStep } from '../tensor/compile.js';
import { type GeneratorState, setGeneratorState } from '../tensor/creation.js';
import { scope } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import {
  checkCompatible,
  type FileWriter,
  fsyncWrite,
  latestCheckpoint,
  readCheckpoint,
  restoreInto,
  saveCheckpoint,
  type Stage,
} from './checkpoint.js';
import type { LoaderState } from './data/index.js';
import { RunError, truncateMetrics } from './run-folder.js';

interface Resumable {
  runDir: string;
  stage: Stage;
  fingerprint: string;
  shape: Record<string, unknown>;
  model: Module;
  ema: EMA;
  optimizer: AdamW;
  loader: { state(): LoaderState; restore(s: LoaderState): void };
}

/**
 * Where the stage starts: 0 for a fresh run, or the latest checkpoint's step with everything
 * restored (weights, EMA, moments, data position, and — last, after every model was built — the
 * GPU generator's position) when resuming. Without --resume, existing checkpoints are an error
 * rather than something to overwrite.
 */
export function resumePoint(r: Resumable & { resume: boolean; totalSteps: number; quiet?: boolean }): number {
  const latest = latestCheckpoint(r.runDir, r.stage);
  if (!r.resume) {
    if (latest)
      throw new RunError(
        `${r.runDir} already has ${r.stage} checkpoints (latest ${path.basename(latest)}): pass --resume to continue it, or use another --run folder`,
      );
    return 0;
  }
  if (!latest) {
    if (!r.quiet) console.log(`--resume: no ${r.stage} checkpoint in ${r.runDir} yet, starting from step 0`);
    return 0;
  }
  const ck = readCheckpoint(latest);
  checkCompatible(ck, r.stage, r.fingerprint, r.shape);
  restoreInto(ck, r.model, { ema: r.ema, optimizer: r.optimizer });
  r.loader.restore(ck.state.loader);
  setGeneratorState(ck.state.generator);
  truncateMetrics(r.runDir, r.stage, ck.state.step);
  if (!r.quiet) {
    const left = r.totalSteps - ck.state.step;
    console.log(
      `resuming ${r.stage} from ${path.basename(latest)}: ${left > 0 ? `${left} steps to go (up to --steps ${r.totalSteps})` : `already at --steps ${r.totalSteps}; raise --steps to train further`}`,
    );
  }
  return ck.state.step;
}

/** Tests: RAE_DEBUG_FAIL_CHECKPOINT_WRITE=N makes the N-th checkpoint file write fail with ENOSPC. */
function debugWriter(): FileWriter | undefined {
  const n = Number(process.env.RAE_DEBUG_FAIL_CHECKPOINT_WRITE);
  if (!(n > 0)) return undefined;
  let count = 0;
  return (file, bytes) => {
    if (++count >= n) {
      const err = new Error(`ENOSPC: no space left on device, write '${file}'`) as NodeJS.ErrnoException;
      err.code = 'ENOSPC';
      throw err;
    }
    fsyncWrite(file, bytes);
  };
}

export function saveStage(
  s: Omit<Resumable, 'loader'> & { loader: { state(): LoaderState }; step: number; generator: GeneratorState; keep: number },
): Promise<string> {
  return saveCheckpoint({
    runDir: s.runDir,
    state: {
      stage: s.stage,
      step: s.step,
      fingerprint: s.fingerprint,
      shape: s.shape,
      generator: s.generator,
      loader: s.loader.state(),
      optimizerSteps: s.optimizer.stepCount,
    },
    model: s.model,
    ema: s.ema,
    optimizer: s.optimizer,
    keep: s.keep,
    write: debugWriter(),
  });
}

/** A stage's step function as the loop calls it; dispose() frees a compiled step's buffers. */
export interface TrainingStep<A extends Tensor[], R> {
  (...inputs: A): R;
  dispose(): void;
}

/**
 * The stage's step, compiled (recorded on its second call, then replayed: src/tensor/compile.ts)
 * unless `eager`. A step that cannot be replayed (it uploads host data, say) runs eagerly, with a
 * note saying why, rather than failing the run.
 */
export function trainingStep<A extends Tensor[], R>(
  body: (...inputs: A) => R,
  o: { eager?: boolean; name: string; quiet?: boolean },
): TrainingStep<A, R> {
  if (o.eager) {
    const eager = (...inputs: A): R => scope(() => body(...inputs));
    return Object.assign(eager, { dispose: () => {} });
  }
  return compileStep(body, {
    name: o.name,
    onRefuse: (why) => {
      if (!o.quiet) console.log(`${o.name}: running eagerly (${why.replace(/\s*\n\s*/g, ' ')})`);
    },
  });
}
