/**
 * The fusion pass of compiled steps (src/kernels/fusion.ts): merged kernels must compute what the
 * eager commands did. Two kinds of checks:
 *
 * - hazards: steps built so that a wrong merge would read a value after (or before) another
 *   command changed it, with exact arithmetic (small integers), so the fused replay must equal
 *   the eager step bit for bit;
 * - the DiT^DH training step (adaLN modulate, gates, SwiGLU, RoPE attention, AdamW): a few
 *   fused replays against eager steps from the same start, within the bound of test/compile
 *   (1e-5 relative to the largest magnitude), with far fewer dispatches than unfused.
 */
import { afterAll, describe, expect, it } from 'vitest';
import * as ops from '../../src/autograd/ops/index.js';
import { backward } from '../../src/autograd/tape.js';
import { flowMatchingBatch } from '../../src/diffusion/flow.js';
import { mapInto } from '../../src/kernels/elementwise.js';
import { setFusedVec4 } from '../../src/kernels/fusion-kernel.js';
import { DiTDH } from '../../src/models/dit.js';
import { AdamW } from '../../src/nn/optim.js';
import { compileStep } from '../../src/tensor/compile.js';
import { manualSeed, randint, randn, tensor, toArray, zeros } from '../../src/tensor/creation.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { useGpu } from '../helpers/setup.js';
import { relByMax } from '../helpers/compare.js';

useGpu();

const view = (t: Tensor) => ({ buffer: t.buffer, dtype: t.dtype, shape: t.shape, strides: t.strides, offset: t.offset });

describe('fusion pass', () => {
  it('keeps the order of reads and in-place writes when it merges maps (bitwise, exact integers)', async () => {
    const N = 300;
    const host = Float32Array.from({ length: N }, (_, i) => (i % 17) - 8);
    const run = async (fused: boolean | null) => {
      const a = tensor(host, [N]);
      const b = tensor(
        host.map((x) => 2 * x),
        [N],
      );
      const acc = tensor(new Float32Array(N).fill(1), [N]);
      const m = tensor(
        host.map((x) => x - 1),
        [N],
      );
      const step = (x: Tensor, y: Tensor) => {
        // u read twice (two later maps): stored and computed in registers.
        const u = ops.mul(x, 3);
        const v = ops.add(ops.add(u, y), m);
        // acc += u, in place: a later read of acc must see the sum, an earlier one must not.
        const before = ops.mul(acc, 2);
        mapInto({ name: 'grad_accumulate', expr: 'acc + in0', compute: 'f32', readsOutput: true }, [view(u)], view(acc));
        const after = ops.sub(acc, v);
        // m overwritten in place after being read by v: maps reading m after must see the new values.
        mapInto({ name: 'grad_accumulate', expr: 'acc + in0', compute: 'f32', readsOutput: true }, [view(before)], view(m));
        const w = ops.add(m, after);
        // A reduction between maps (a non-map reader of one map's result).
        const s = ops.sum(ops.mul(w, w));
        // A command that reads m sits between a map and an in-place update of m that reads that
        // map's result: the update may not move up past the reader.
        const p = ops.mul(x, 5);
        const sm = ops.sum(m);
        const m1 = ops.mul(m, 7);
        mapInto({ name: 'grad_accumulate', expr: 'acc + in0', compute: 'f32', readsOutput: true }, [view(p)], view(m));
        // The same map again: on x (untouched) it may reuse the first result, on m (updated) it may not.
        const m2 = ops.mul(m, 7);
        const p2 = ops.add(ops.mul(x, 5), m2);
        // A write to half of acc (another element count: not mergeable) between a map and a map
        // reading both its result and acc: the reader may not move up past the write.
        const q = ops.add(x, 1);
        const half = { ...view(acc), shape: [N / 2] };
        mapInto({ name: 'grad_accumulate', expr: 'acc + s0', compute: 'f32', readsOutput: true, scalars: [5] }, [], half);
        const z = ops.mul(q, acc);
        // Zeroed gradients filled window by window (accumulations into zeros become copies): one
        // read between the windows keeps the fill, the other buffer's fill is dead.
        const h = ops.mul(ops.narrow(x, 0, 0, N / 2), 2);
        const acc0 = (t: Tensor, at: number) =>
          mapInto({ name: 'grad_accumulate', expr: 'acc + in0', compute: 'f32', readsOutput: true }, [view(h)], {
            ...view(t),
            shape: [N / 2],
            offset: at,
          });
        const g1 = zeros([N]);
        acc0(g1, 0);
        const peek = ops.mul(g1, 3);
        acc0(g1, N / 2);
        const g2 = zeros([N]);
        acc0(g2, N / 2);
        acc0(g2, 0);
        const gs = ops.add(ops.mul(g1, peek), g2);
        // Column sums of one layout share a dispatch, but not across a write to one's input.
        const colSum = (t: Tensor) => ops.sum(ops.reshape(t, [20, 15]), [0]);
        const t1 = colSum(acc);
        mapInto({ name: 'grad_accumulate', expr: 'acc + s0', compute: 'f32', readsOutput: true, scalars: [3] }, [], view(acc));
        const t2 = colSum(acc);
        const t3 = colSum(m);
        // The same over R = 100 (two chunks combined in a workgroup).
        const colSum2 = (t: Tensor) => ops.sum(ops.reshape(t, [100, 3]), [0]);
        const u1 = colSum2(m);
        mapInto({ name: 'grad_accumulate', expr: 'acc + s0', compute: 'f32', readsOutput: true, scalars: [2] }, [], view(m));
        const u2 = colSum2(m);
        const u3 = colSum2(acc);
        return [ops.mul(v, before), w, s, sm, z, gs, m1, p2, t1, t2, t3, u1, u2, u3];
      };
      const fn = fused === null ? step : compileStep(step, { fusion: fused });
      const outs: Float32Array[][] = [];
      for (let i = 0; i < 3; i++) {
        const r = fn(a, b) as Tensor[];
        outs.push((await Promise.all([...r, acc, m].map((t) => toArray(t)))) as Float32Array[]);
        for (const t of r) t.dispose();
      }
      const dispatches = fused === null ? 0 : (fn as ReturnType<typeof compileStep>).stats()!.dispatches;
      if (fused !== null) (fn as ReturnType<typeof compileStep>).dispose();
      for (const t of [a, b, acc, m]) t.dispose();
      return { outs, dispatches };
    };
    const eager = await run(null);
    const plain = await run(false);
    const fused = await run(true);
    expect(fused.dispatches).toBeLessThan(plain.dispatches);
    expect(plain.outs).toEqual(eager.outs);
    expect(fused.outs).toEqual(eager.outs);
  });

  describe('DiT^DH training step', () => {
    const made: (() => void)[] = [];
    afterAll(() => made.forEach((f) => f()));

    const build = () => {
      manualSeed(7);
      const model = DiTDH.fromConfig({
        input_size: 4,
        patch_size: 1,
        in_channels: 8,
        hidden_size: [32, 48],
        depth: [2, 1],
        num_heads: [2, 2],
        num_classes: 4,
        use_swiglu: true,
        use_rmsnorm: true,
        use_rope: true,
      });
      const params = model.trainableParameters();
      const opt = new AdamW(params, { lr: 1e-3, betas: [0.9, 0.95], weightDecay: 0 });
      made.push(() => {
        opt.dispose();
        model.dispose();
      });
      const step = (x: Tensor, y: Tensor): Tensor => {
        const { xt, t, target } = flowMatchingBatch(x, 1);
        const v = model.forward(xt, t, y);
        const d = ops.sub(v, target);
        const l = ops.mean(ops.mul(d, d));
        backward(l);
        opt.clipGradNorm(1);
        opt.step();
        opt.zeroGrad();
        return l;
      };
      return { params, step };
    };

    it('fused replays stay within 1e-5 (relative to max) of eager steps, with ≥ 20% fewer dispatches', async () => {
      const x = randn([4, 8, 4, 4], { seed: 3 });
      const y = randint(0, 4, [4], { seed: 4 });
      made.push(() => {
        x.dispose();
        y.dispose();
      });
      const run = async (fusion: boolean | null) => {
        const m = build();
        manualSeed(11);
        const step = fusion === null ? null : compileStep(m.step, { fusion });
        for (let i = 0; i < 4; i++) (step ? step(x, y) : m.step(x, y)).dispose();
        const host = (await Promise.all(m.params.map((p) => toArray(p)))) as Float32Array[];
        const dispatches = step?.stats()?.dispatches ?? 0;
        step?.dispose();
        return { host, dispatches };
      };
      const eager = await run(null);
      const plain = await run(false);
      const fused = await run(true);
      expect(plain.host).toEqual(eager.host);
      expect(fused.dispatches).toBeLessThan(0.8 * plain.dispatches);
      const worst = Math.max(...fused.host.map((f, k) => relByMax(f, eager.host[k])));
      console.log(
        `DiT^DH fusion: ${plain.dispatches} → ${fused.dispatches} dispatches; worst relative-by-max difference ${worst.toExponential(2)}`,
      );
      expect(worst).toBeLessThan(1e-5);
    });

    // The fused kernels step by vec4 where every operand allows it (fusion-kernel.ts vec4Plan);
    // per element they compute exactly what the one-element kernels do.
    it('fused replays with vec4 and with one-element fused kernels agree bit for bit', async () => {
      const x = randn([4, 8, 4, 4], { seed: 5 });
      const y = randint(0, 4, [4], { seed: 6 });
      made.push(() => {
        x.dispose();
        y.dispose();
      });
      const run = async (vec4: boolean) => {
        setFusedVec4(vec4);
        try {
          const m = build();
          manualSeed(13);
          const step = compileStep(m.step, { fusion: true });
          for (let i = 0; i < 3; i++) step(x, y).dispose();
          const host = (await Promise.all(m.params.map((p) => toArray(p)))) as Float32Array[];
          step.dispose();
          return host;
        } finally {
          setFusedVec4(true);
        }
      };
      const one = await run(false);
      const four = await run(true);
      expect(four).toEqual(one);
    });
  });
});
