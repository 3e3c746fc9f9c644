/**
 * This engine on the suite's cases: kernels called directly where a case is one kernel (matmul,
 * attention), the differentiable ops otherwise, recorded without waiting (one sync per timed batch).
 */
import * as ops from '../../src/autograd/ops/index.js';
import { map } from '../../src/autograd/ops/map.js';
import { backward, noGrad } from '../../src/autograd/tape.js';
import { runtime } from '../../src/gpu/runtime.js';
import { attentionBackward, attentionForward } from '../../src/kernels/attention.js';
import { matmulInto } from '../../src/kernels/matmul.js';
import { AdamW } from '../../src/nn/optim.js';
import { tensor, toArray } from '../../src/tensor/creation.js';
import { compileStep } from '../../src/tensor/compile.js';
import { scope } from '../../src/tensor/scope.js';
import { empty, type Tensor, viewOf } from '../../src/tensor/tensor.js';
import { makeDitdhStep } from '../ditdh-step.js';
import { ADAM } from './reference.js';
import { type Engine, type Prepared, UnsupportedCase } from './engine.js';
import type { BenchCase, Input } from './spec.js';

const upload = (i: Input): Tensor => tensor(i.data, i.shape).keep();

/** A compiled (recorded once, replayed) training step: the calls, dispatches per replay, disposal. */
function compiled(
  step: () => void,
  opts: { fusion?: boolean; name: string },
): { run: () => void; dispatches: () => number | null; dispose: () => void } {
  const c = compileStep(step, { name: opts.name, fusion: opts.fusion ?? false });
  return { run: () => void c(), dispatches: () => c.stats()?.dispatches ?? null, dispose: () => c.dispose() };
}

export function oursEngine(opts: { compiled?: boolean; fusion?: boolean } = {}): Engine {
  return {
    name: opts.compiled ? `ours compiled${opts.fusion ? '+fused' : ''}` : 'ours',
    supports: (c) => !opts.compiled || c.op.kind === 'ditdh-train' || c.op.kind === 'block-train',
    async prepare(c: BenchCase, inputs: Input[]): Promise<Prepared> {
      const rt = runtime();
      const owned: Tensor[] = [];
      const keep = (t: Tensor) => {
        owned.push(t.keep());
        return t;
      };
      const sync = () => rt.sync();
      let last: Tensor | null = null;
      const replaceLast = (t: Tensor) => {
        last?.dispose();
        last = t.keep();
      };
      const base = {
        sync,
        dispose: () => {
          last?.dispose();
          for (const t of new Set(owned)) t.dispose();
        },
      };
      const readOf = (t: () => Tensor) => async () => (await toArray(t())) as Float32Array;
      const op = c.op;
      if (opts.compiled && op.kind !== 'ditdh-train' && op.kind !== 'block-train')
        throw new UnsupportedCase('compiled steps only for training steps');
      switch (op.kind) {
        case 'copy': {
          const x = keep(upload(inputs[0]));
          return { ...base, run: () => replaceLast(noGrad(() => map('copy', [x], 'in0'))), read: readOf(() => last!) };
        }
        case 'matmul': {
          const { M, K, N } = op;
          const aS = keep(upload(inputs[0]));
          const bS = keep(upload(inputs[1]));
          const a = op.transA ? viewOf(aS, [M, K], [1, M], 0) : aS;
          const b = op.transB ? viewOf(bS, [K, N], [1, K], 0) : bS;
          const out = keep(empty([M, N]));
          return { ...base, run: () => matmulInto(a, b, out), read: readOf(() => out) };
        }
        case 'attention': {
          const [q, k, v, g] = inputs.map((i) => keep(upload(i)));
          const shape = inputs[0].shape;
          const o = keep(empty(shape));
          const lse = keep(empty(shape.slice(0, 3)));
          const grads = [0, 1, 2].map(() => keep(empty(shape)));
          const scale = 1 / Math.sqrt(op.D);
          const run = () => {
            attentionForward(q, k, v, o, lse, scale);
            if (op.backward) attentionBackward(q, k, v, o, lse, g, grads[0], grads[1], grads[2], scale);
          };
          return { ...base, run, read: readOf(() => (op.backward ? grads[2] : o)) };
        }
        case 'layerNorm':
        case 'rmsNorm':
        case 'softmax': {
          const [x, w, b] = inputs.map((i) => keep(upload(i)));
          const f =
            op.kind === 'softmax'
              ? () => ops.softmax(x, -1)
              : op.kind === 'layerNorm'
                ? () => ops.layerNorm(x, [op.W], w, b)
                : () => ops.rmsNorm(x, [op.W], w);
          return { ...base, run: () => replaceLast(noGrad(f)), read: readOf(() => last!) };
        }
        case 'adamw': {
          const p = keep(upload(inputs[0]));
          p.requiresGrad = true;
          p.grad = keep(upload(inputs[1]));
          const opt = new AdamW([p], ADAM);
          return {
            ...base,
            run: () => opt.step(),
            read: readOf(() => p),
            dispose: () => {
              opt.dispose();
              p.grad = null;
              base.dispose();
            },
          };
        }
        case 'block-train': {
          const eager = blockTrain(op, inputs, base);
          if (!opts.compiled) return eager;
          const step = compiled(() => void eager.run(), { fusion: opts.fusion, name: 'block train step' });
          // The first call runs eagerly (its loss is the one checked), the second records; replays follow.
          return {
            ...eager,
            run: step.run,
            dispose: () => {
              step.dispose();
              eager.dispose();
            },
            counters: () => ({ dispatches: step.dispatches() ?? 0 }),
          };
        }
        case 'ditdh-train': {
          const { step, dispose } = makeDitdhStep();
          const replayed = opts.compiled ? compiled(step, { fusion: opts.fusion, name: 'DiT^DH train step' }) : null;
          const run = replayed ? replayed.run : step;
          // compileStep runs the first call eagerly and records the second: both before any timing.
          if (replayed) {
            replayed.run();
            replayed.run();
            await rt.sync();
          }
          // Dispatches counted around this engine's own calls: other engines' repeats run in between (interleaved).
          let own = 0;
          let calls = 0;
          return {
            sync,
            run: () => {
              const d0 = rt.counters.dispatches;
              run();
              own += rt.counters.dispatches - d0;
              calls++;
            },
            read: async () => {
              throw new Error('no reference for the DiT^DH step');
            },
            dispose: () => {
              replayed?.dispose();
              dispose();
            },
            counters: () => {
              // A replay may bypass the runtime's per-dispatch counter: its program says how many it issues.
              const perCall = replayed?.dispatches() ?? (calls ? own / calls : 0);
              own = 0;
              calls = 0;
              return { dispatches: perCall };
            },
            hostProbe: () => hostTimePerDispatch(run, () => replayed?.dispatches() ?? null),
          };
        }
      }
    },
  };
}

type Base = { sync: () => Promise<void>; dispose: () => void };

const HOST_PROBE_CALLS = 15;

/**
 * Host time of one call (JS and Dawn: recording, or a replay's encoding and submit), each call
 * made with the GPU idle and after a pause, so that a software adapter's worker threads are not
 * competing with the JS thread for the CPU. Per dispatch: median and minimum over the calls.
 */
async function hostTimePerDispatch(run: () => void, programDispatches: () => number | null): Promise<Record<string, number>> {
  const rt = runtime();
  const samples: number[] = [];
  let dispatches = 0;
  for (let i = 0; i < HOST_PROBE_CALLS; i++) {
    await rt.sync();
    await new Promise((r) => setTimeout(r, 10));
    const d0 = rt.counters.dispatches;
    const t0 = performance.now();
    run();
    samples.push(performance.now() - t0);
    dispatches = programDispatches() ?? rt.counters.dispatches - d0;
  }
  await rt.sync();
  samples.sort((a, b) => a - b);
  const us = (ms: number) => (1000 * ms) / Math.max(1, dispatches);
  return { hostUsPerDispatch: us(samples[samples.length >> 1]), hostUsPerDispatchMin: us(samples[0]) };
}

function blockTrain(op: Extract<BenchCase['op'], { kind: 'block-train' }>, inputs: Input[], base: Base): Prepared {
  const { B, N, D, H } = op;
  const x = upload(inputs[0]);
  const params = inputs.slice(1).map((i) => {
    const t = upload(i);
    t.requiresGrad = true;
    return t;
  });
  const [ln1w, ln1b, qkvw, qkvb, projw, projb, ln2w, ln2b, fc1w, fc1b, fc2w, fc2b] = params;
  const opt = new AdamW(params, { ...ADAM, lr: 1e-4 });
  let firstLoss: Tensor | null = null;
  const run = () =>
    scope(() => {
      const x2 = ops.reshape(x, [B * N, D]);
      const qkv = ops.linear(ops.layerNorm(x2, [D], ln1w, ln1b), qkvw, qkvb);
      const heads = (i: number) => ops.permute(ops.reshape(ops.narrow(qkv, 1, i * D, D), [B, N, H, D / H]), [0, 2, 1, 3]);
      const att = ops.reshape(ops.scaledDotProductAttention(heads(0), heads(1), heads(2), { layout: 'merged' }), [B * N, D]);
      const h = ops.add(x2, ops.linear(att, projw, projb));
      const m = ops.linear(ops.unary('gelu_tanh', ops.linear(ops.layerNorm(h, [D], ln2w, ln2b), fc1w, fc1b)), fc2w, fc2b);
      const y = ops.add(h, m);
      const loss = ops.mean(ops.mul(y, y));
      backward(loss);
      opt.step();
      opt.zeroGrad();
      if (!firstLoss) firstLoss = loss.detach().keep();
    });
  return {
    sync: base.sync,
    run,
    read: async () => (await toArray(firstLoss!)) as Float32Array,
    dispose: () => {
      opt.dispose();
      firstLoss?.dispose();
      for (const t of [x, ...params]) t.dispose();
      base.dispose();
    },
  };
}
