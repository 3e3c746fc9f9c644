/**
 * Checkpoints (src/train/checkpoint.ts) and the run folder (src/train/run-folder.ts):
 * - a save → read → restore round trip reproduces weights, EMA, Adam moments and step count
 *   bit for bit;
 * - a write that fails part-way (a full disk, injected) leaves the previous checkpoint intact and
 *   no temporary folder behind, with an error naming the problem;
 * - only the last N checkpoints are kept;
 * - a checkpoint from another configuration is refused with the differing fields listed;
 * - the lock names a live holder and takes over a dead one's;
 * - latent statistics combined batch by batch (Chan) equal a two-pass float64 computation.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as ops from '../../src/autograd/ops/index.js';
import { backward } from '../../src/autograd/tape.js';
import { Linear } from '../../src/nn/layers.js';
import { AdamW, EMA } from '../../src/nn/optim.js';
import { manualSeed, randn, toArray } from '../../src/tensor/creation.js';
import { scope } from '../../src/tensor/scope.js';
import {
  checkCompatible,
  CheckpointError,
  listCheckpoints,
  readCheckpoint,
  restoreInto,
  saveCheckpoint,
} from '../../src/train/checkpoint.js';
import { RunningMoments } from '../../src/train/latent-stats.js';
import { acquireLock } from '../../src/train/run-folder.js';
import { randomData } from '../helpers/random.js';
import { useGpu } from '../helpers/setup.js';

useGpu();

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'rae-ckpt-'));

function setup(seed: number) {
  manualSeed(seed);
  const model = new Linear(5, 3);
  const opt = new AdamW(model.trainableParameters(), { lr: 1e-2 });
  const ema = new EMA(model.trainableParameters(), 0.9);
  return { model, opt, ema };
}

function trainSteps(s: ReturnType<typeof setup>, n: number): void {
  for (let i = 0; i < n; i++) {
    scope(() => {
      const y = s.model.forward(randn([4, 5]));
      backward(ops.mean(ops.mul(y, y)));
      s.opt.step();
      s.opt.zeroGrad();
      s.ema.update();
    });
  }
}

const state = (step: number, fingerprint = 'abc') => ({
  stage: 'decoder' as const,
  step,
  fingerprint,
  shape: { decoder: { hidden: 3 } },
  generator: { seed: 1, stream: 7 },
  loader: { seed: 1, epoch: 0, position: 4 },
  optimizerSteps: step,
});

async function host(
  ts: { parameters(): import('../../src/tensor/tensor.js').Tensor[] } | import('../../src/tensor/tensor.js').Tensor[],
): Promise<number[][]> {
  const list = Array.isArray(ts) ? ts : ts.parameters();
  return Promise.all(list.map(async (t) => Array.from(await toArray(t))));
}

describe('checkpoints', () => {
  it('round trip: weights, EMA, Adam moments and step count restore exactly', async () => {
    const dir = tmp();
    const a = setup(1);
    trainSteps(a, 3);
    await saveCheckpoint({ runDir: dir, state: state(3), model: a.model, ema: a.ema, optimizer: a.opt, keep: 2 });
    const b = setup(2);
    restoreInto(readCheckpoint(listCheckpoints(dir, 'decoder')[0]), b.model, { ema: b.ema, optimizer: b.opt });
    expect(await host(b.model)).toEqual(await host(a.model));
    expect(await host(b.ema.shadow)).toEqual(await host(a.ema.shadow));
    expect(b.opt.stepCount).toBe(3);
    // Same data from here on → identical weights after more steps (moments restored too).
    manualSeed(9);
    trainSteps(a, 2);
    manualSeed(9);
    trainSteps(b, 2);
    expect(await host(b.model)).toEqual(await host(a.model));
  });

  it('a write failing part-way (disk full) keeps the previous checkpoint intact', async () => {
    const dir = tmp();
    const s = setup(3);
    trainSteps(s, 1);
    await saveCheckpoint({ runDir: dir, state: state(1), model: s.model, ema: s.ema, optimizer: s.opt, keep: 3 });
    const before = fs.readFileSync(path.join(dir, 'checkpoints/decoder-00000001/model.safetensors'));
    trainSteps(s, 1);
    let writes = 0;
    const failing = (file: string, bytes: Uint8Array) => {
      if (++writes === 2) {
        fs.writeFileSync(file, bytes.subarray(0, 10)); // a torn file, then ENOSPC
        throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      }
      fs.writeFileSync(file, bytes);
    };
    await expect(
      saveCheckpoint({ runDir: dir, state: state(2), model: s.model, ema: s.ema, optimizer: s.opt, keep: 3, write: failing }),
    ).rejects.toThrow(/decoder-00000002 \(the disk is full\); the previous checkpoint decoder-00000001 is intact/);
    expect(listCheckpoints(dir, 'decoder').map((d) => path.basename(d))).toEqual(['decoder-00000001']);
    expect(fs.readdirSync(path.join(dir, 'checkpoints'))).toEqual(['decoder-00000001']);
    expect(fs.readFileSync(path.join(dir, 'checkpoints/decoder-00000001/model.safetensors')).equals(before)).toBe(true);
    readCheckpoint(listCheckpoints(dir, 'decoder')[0]);
  });

  it('keeps the last N and refuses another configuration, listing what differs', async () => {
    const dir = tmp();
    const s = setup(4);
    for (const step of [1, 2, 3, 4])
      await saveCheckpoint({ runDir: dir, state: state(step), model: s.model, ema: s.ema, optimizer: s.opt, keep: 2 });
    expect(listCheckpoints(dir, 'decoder').map((d) => path.basename(d))).toEqual(['decoder-00000003', 'decoder-00000004']);
    const ck = readCheckpoint(listCheckpoints(dir, 'decoder')[1]);
    expect(() => checkCompatible(ck, 'decoder', 'abc', { decoder: { hidden: 3 } })).not.toThrow();
    expect(() => checkCompatible(ck, 'decoder', 'other', { decoder: { hidden: 5 } })).toThrow(/decoder\.hidden: checkpoint 3 ≠ now 5/);
    expect(() => checkCompatible(ck, 'dit', 'abc', {})).toThrow(CheckpointError);
  });
});

describe('run lock', () => {
  it('names a live holder, and takes over a lock whose process is gone', () => {
    const dir = tmp();
    const lock = path.join(dir, '.lock');
    fs.writeFileSync(lock, JSON.stringify({ pid: process.ppid, host: os.hostname(), command: 'rae train-dit', startedAt: 'then' }));
    expect(() => acquireLock(dir, 'rae train-decoder')).toThrow(
      new RegExp(`in use by 'rae train-dit' \\(pid ${process.ppid} on ${os.hostname()}`),
    );
    // A pid far above pid_max is never alive.
    fs.writeFileSync(lock, JSON.stringify({ pid: 2 ** 30, host: os.hostname(), command: 'rae train-dit', startedAt: 'then' }));
    const release = acquireLock(dir, 'rae train-decoder');
    expect(JSON.parse(fs.readFileSync(lock, 'utf8')).pid).toBe(process.pid);
    release();
    expect(fs.existsSync(lock)).toBe(false);
  });
});

describe('latent statistics', () => {
  it('Chan-combined batches equal the two-pass float64 mean and population variance', () => {
    const [N, D] = [37, 6];
    const x = randomData(N * D, 5, -3, 5).map((v, i) => v + 1000 * (i % D)); // large offsets
    const m = new RunningMoments(D);
    for (const [s, e] of [
      [0, 5],
      [5, 6],
      [6, 30],
      [30, 37],
    ])
      m.add(x.subarray(s * D, e * D), e - s);
    for (let j = 0; j < D; j++) {
      let mean = 0;
      for (let i = 0; i < N; i++) mean += x[i * D + j] / N;
      let v = 0;
      for (let i = 0; i < N; i++) v += (x[i * D + j] - mean) ** 2 / N;
      expect(Math.abs(m.mean[j] - mean)).toBeLessThan(1e-9);
      expect(Math.abs(m.variance()[j] - v) / v).toBeLessThan(1e-12);
    }
    expect(m.count).toBe(N);
  });
});
