/**
 * Soak run (issue #11): loops the real workloads — DiT^DH training steps (forward, backward,
 * clipping, AdamW, EMA), CFG sampling, checkpoint write/read through safetensors, read-backs at
 * long intervals — and samples memory at the same point of every cycle, so that a leak shows up
 * as growth after warm-up. The CLI is bench/soak.ts; test/gpu/soak.test.ts runs it for ~25 s.
 *
 * The loop never awaits a read-back between the long intervals: it stays flat only because it
 * awaits runtime().yieldIfBusy() after each step, as every library loop must.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import * as ops from '../src/autograd/ops/index.js';
import { backward } from '../src/autograd/tape.js';
import { eulerSample, flowMatchingBatch, samplerGrid, shiftAlpha } from '../src/diffusion/flow.js';
import { runtime } from '../src/gpu/runtime.js';
import { loadWeights } from '../src/io/pretrained.js';
import { saveSafetensors, type WriteTensor } from '../src/io/safetensors.js';
import { DiTDH, type DiTConfig } from '../src/models/dit.js';
import { AdamW, EMA } from '../src/nn/optim.js';
import { randint, randn, toArray } from '../src/tensor/creation.js';
import { memoryStats, scope } from '../src/tensor/scope.js';
import { setGcSafetyNet, type Tensor } from '../src/tensor/tensor.js';
import { type SoakSample, checkSoak, type SoakTolerances, DEFAULT_TOLERANCES } from './soak-check.js';

export { checkSoak, DEFAULT_TOLERANCES, type SoakSample, type SoakTolerances } from './soak-check.js';

/** A small DiT^DH (16 tokens, width 32 body / 48 head) so a step takes tens of ms on lavapipe. */
export const SOAK_MODEL: DiTConfig = {
  input_size: 4,
  patch_size: 1,
  in_channels: 8,
  hidden_size: [32, 48],
  depth: [2, 1],
  num_heads: [2, 2],
  num_classes: 10,
  use_swiglu: true,
  use_rmsnorm: true,
  use_rope: true,
};

export interface SoakOptions {
  /** Wall-clock duration of the run, seconds (warm-up included). */
  seconds: number;
  /**
   * Seconds of warm-up before the baseline sample (pool filling, pipeline compilation); the
   * warm-up also lasts until the first checkpoint and read-back, whose buffers the pool keeps.
   */
  warmupSeconds?: number;
  /** Training steps per cycle. */
  stepsPerCycle?: number;
  batch?: number;
  /** Euler steps of the CFG sample drawn each cycle. */
  sampleSteps?: number;
  /** Read the loss back every this many cycles (the only other awaits are yieldIfBusy). */
  readEvery?: number;
  /** Write a checkpoint and load it into the sampling model every this many cycles. */
  checkpointEvery?: number;
  tolerances?: Partial<SoakTolerances>;
  /** Called with each sample (one per cycle, at the cycle's end). */
  onSample?: (s: SoakSample) => void;
  /** Checked at every cycle boundary: return true to stop early (e.g. on SIGINT). */
  shouldStop?: () => boolean;
  /** Test hook: extra work run inside each cycle (e.g. a deliberate leak). */
  extraPerCycle?: (cycle: number) => void;
}

export interface SoakResult {
  samples: SoakSample[];
  /** Index into samples of the baseline (first sample after warm-up); -1 if none. */
  baseline: number;
  ok: boolean;
  /** One line: why it failed, or what was checked. */
  verdict: string;
  dispatchesPerSecond: number;
  cycles: number;
  losses: number[];
  stopped: boolean;
}

/** A full collection, then a turn of the event loop so finalizers run. */
function collector(): () => Promise<void> {
  let gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) {
    // Not started with --expose-gc (npm run soak): enable it for this process.
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  const collect = gc;
  return async () => {
    for (let i = 0; i < 2; i++) {
      collect();
      await new Promise((r) => setTimeout(r, 0));
    }
  };
}

/** Runs the soak loop for opts.seconds and checks the series against the tolerances. */
export async function runSoak(opts: SoakOptions): Promise<SoakResult> {
  const rt = runtime();
  const stepsPerCycle = opts.stepsPerCycle ?? 20;
  const B = opts.batch ?? 8;
  const sampleSteps = opts.sampleSteps ?? 4;
  const readEvery = opts.readEvery ?? 5;
  const checkpointEvery = opts.checkpointEvery ?? 10;
  const warmupSeconds = opts.warmupSeconds ?? Math.min(30, Math.max(5, opts.seconds * 0.2));
  const tol = { ...DEFAULT_TOLERANCES, ...opts.tolerances };
  const settle = collector();
  // A tensor dropped without dispose() must stay counted, not be rescued by the garbage collector.
  const prevNet = setGcSafetyNet(false);
  const dir = mkdtempSync(path.join(tmpdir(), 'rae-soak-'));
  const cfg = SOAK_MODEL;
  const C = cfg.in_channels;
  const grid = cfg.input_size;
  const model = DiTDH.fromConfig(cfg);
  const sampler = DiTDH.fromConfig(cfg).eval();
  const params = model.trainableParameters();
  const opt = new AdamW(params, { lr: 1e-3, betas: [0.9, 0.95], weightDecay: 0 });
  const ema = new EMA(params, 0.999);
  const data = randn([64, C, grid, grid], { seed: 1 });
  const labels = randint(0, cfg.num_classes, [64], { seed: 2 });
  const alpha = shiftAlpha(C * grid * grid);
  const samples: SoakSample[] = [];
  const losses: number[] = [];
  const t0 = performance.now();
  const d0 = rt.counters.dispatches;
  let baseline = -1;
  let cycle = 0;
  let stopped = false;
  let dWarm = d0;
  let tWarm = t0;
  const elapsed = () => (performance.now() - t0) / 1000;

  const trainStep = (step: number): Tensor =>
    scope(() => {
      const off = (step * B) % data.shape[0];
      const x = ops.narrow(data, 0, off, B);
      const y = ops.narrow(labels, 0, off, B);
      const { xt, t, target } = flowMatchingBatch(x, alpha);
      const d = ops.sub(model.forward(xt, t, y), target);
      const l = ops.mean(ops.mul(d, d));
      backward(l);
      opt.clipGradNorm(1);
      opt.step();
      opt.zeroGrad();
      ema.update();
      return l;
    });

  const checkpoint = async (n: number) => {
    const file = path.join(dir, `step-${n}.safetensors`);
    const state = new Map<string, WriteTensor>();
    for (const [k, t] of model.stateDict()) state.set(k, { shape: [...t.shape], data: await toArray(t) });
    saveSafetensors(file, state, { step: String(n) });
    loadWeights(sampler, file);
    rmSync(file);
    // The round trip must be exact: a soak that passed while corrupting checkpoints would mislead.
    for (const [k, t] of sampler.stateDict()) {
      const got = await toArray(t);
      const want = state.get(k)!.data;
      if (got.length !== want.length || got.some((v, i) => !Object.is(v, want[i])))
        throw new Error(`soak: checkpoint round trip changed '${k}'`);
    }
  };

  const sample = async () => {
    const noise = randn([4, C, grid, grid]);
    const y = randint(0, cfg.num_classes, [4]);
    const out = await eulerSample((x, t) => sampler.forwardWithCfg(x, t, y, 4, [0, 0.7]), noise, samplerGrid(sampleSteps + 1, alpha));
    for (const t of [noise, y, out]) t.dispose();
  };

  try {
    await rt.sync();
    while (!(opts.shouldStop?.() ?? false) && elapsed() < opts.seconds) {
      let last: Tensor | undefined;
      for (let s = 0; s < stepsPerCycle; s++) {
        last?.dispose();
        last = trainStep(cycle * stepsPerCycle + s);
        await rt.yieldIfBusy();
      }
      if (cycle % readEvery === readEvery - 1) losses.push((await toArray(last!))[0]);
      last?.dispose();
      await sample();
      if (cycle % checkpointEvery === checkpointEvery - 1) await checkpoint(cycle);
      opts.extraPerCycle?.(cycle);
      cycle++;

      // The same point of every cycle: everything the cycle made is disposed (or leaked).
      await settle();
      const m = memoryStats();
      const mem = process.memoryUsage();
      const s: SoakSample = {
        cycle,
        seconds: elapsed(),
        dispatches: rt.counters.dispatches - d0,
        rssBytes: mem.rss,
        heapBytes: mem.heapUsed,
        externalBytes: mem.external,
        liveBytes: m.liveBytes,
        liveTensors: m.liveTensors,
        pooledBytes: m.pooledBytes,
        buffersCreated: m.buffersCreated,
        inFlight: rt.inFlight.commands,
        warm: baseline >= 0 || (elapsed() >= warmupSeconds && cycle >= Math.max(checkpointEvery, readEvery)),
      };
      if (s.warm && baseline < 0) {
        baseline = samples.length;
        dWarm = rt.counters.dispatches;
        tWarm = performance.now();
      }
      samples.push(s);
      opts.onSample?.(s);
    }
    stopped = elapsed() < opts.seconds;
    await rt.sync();
  } finally {
    for (const t of [data, labels]) t.dispose();
    ema.dispose();
    opt.dispose();
    model.dispose();
    sampler.dispose();
    rmSync(dir, { recursive: true, force: true });
    setGcSafetyNet(prevNet);
  }
  const { ok, verdict } = checkSoak(samples, baseline, tol);
  const secs = (performance.now() - tWarm) / 1000;
  return { samples, baseline, ok, verdict, dispatchesPerSecond: (rt.counters.dispatches - dWarm) / secs, cycles: cycle, losses, stopped };
}
