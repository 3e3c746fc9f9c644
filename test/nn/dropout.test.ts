/**
 * Random masks at their stated rates: bernoulli(p) and dropout(p) counted over large samples and
 * compared with the binomial law — the count of ones (or of dropped elements) k over n trials must
 * lie within 6 standard deviations √(n·p·(1 − p)) of n·p, overall and on index subsets (even/odd
 * positions, which come from the two words of one Threefry block; the first and second half), and
 * neighbouring pairs must both be one at rate p².
 * Seeds are fixed, so each outcome is deterministic; 6σ keeps a correct engine far from the edge
 * while a wrong rate (p vs 1 − p, a halved probability, a shared word) is off by ≫ 6σ.
 * Dropout's kept elements are exactly x/(1 − p) (1e-6 relative, one f32 multiply), its gradient
 * uses the same mask and scale, and eval mode / p = 0 is the identity. Label dropout (the null
 * class for classifier-free guidance) replaces labels at its rate p within the same 6σ bound.
 */
import { describe, expect, it } from 'vitest';
import * as ops from '../../src/autograd/ops/index.js';
import { backward } from '../../src/autograd/tape.js';
import { LabelEmbedder } from '../../src/nn/layers.js';
import { bernoulli, manualSeed, tensor, toArray } from '../../src/tensor/creation.js';
import { scopeAsync } from '../../src/tensor/scope.js';
import { randomData } from '../helpers/random.js';
import { useGpu } from '../helpers/setup.js';

useGpu();

const SIGMAS = 6;

/** Asserts that `count` successes in `n` trials are within 6σ of Binomial(n, p). */
function expectBinomial(count: number, n: number, p: number, label: string): void {
  const sd = Math.sqrt(n * p * (1 - p));
  expect(Math.abs(count - n * p), `${label}: ${count} of ${n}, expected ${n * p} ± ${SIGMAS}·${sd.toFixed(1)}`).toBeLessThanOrEqual(
    SIGMAS * sd,
  );
}

/** Counts by subset: all, even indices, odd indices, first half, second half. */
function subsets(flags: ArrayLike<boolean>): [string, number, number][] {
  const n = flags.length;
  const c = { all: 0, even: 0, odd: 0, first: 0, second: 0 };
  for (let i = 0; i < n; i++) {
    if (!flags[i]) continue;
    c.all++;
    if (i % 2 === 0) c.even++;
    else c.odd++;
    if (i < n / 2) c.first++;
    else c.second++;
  }
  return [
    ['all', c.all, n],
    ['even', c.even, Math.ceil(n / 2)],
    ['odd', c.odd, Math.floor(n / 2)],
    ['first half', c.first, Math.ceil(n / 2)],
    ['second half', c.second, Math.floor(n / 2)],
  ];
}

describe('bernoulli rate', () => {
  const n = 100_003;
  for (const p of [0.001, 0.1, 0.5, 0.9]) {
    it(`p = ${p}: only 0/1, count within 6σ of n·p overall and on index subsets`, () =>
      scopeAsync(async () => {
        const b = await toArray(bernoulli([n], p, { seed: 17 }));
        expect(b.every((v) => v === 0 || v === 1)).toBe(true);
        for (const [label, k, m] of subsets(Array.from(b, (v) => v === 1))) expectBinomial(k, m, p, `p = ${p}, ${label}`);
        // Neighbours are independent: both ones in P(p²) of the pairs (2i, 2i + 1) — one Threefry
        // block — and (2i + 1, 2i + 2) — across blocks.
        for (const off of [0, 1]) {
          let both = 0;
          let pairs = 0;
          for (let i = off; i + 1 < n; i += 2, pairs++) if (b[i] === 1 && b[i + 1] === 1) both++;
          expectBinomial(both, pairs, p * p, `p = ${p}, neighbours from ${off}`);
        }
      }));
  }

  it('p = 0 gives all zeros and p = 1 all ones', () =>
    scopeAsync(async () => {
      expect((await toArray(bernoulli([4097], 0, { seed: 3 }))).every((v) => v === 0)).toBe(true);
      expect((await toArray(bernoulli([4097], 1, { seed: 3 }))).every((v) => v === 1)).toBe(true);
    }));
});

describe('dropout', () => {
  const shape = [4, 251, 100]; // 100 400 elements, not a multiple of the workgroup size
  const n = 4 * 251 * 100;
  // Non-zero inputs, so a zero output means "dropped".
  const x = Float32Array.from(randomData(n, 5, 0.5, 2), (v, i) => (i % 3 === 0 ? -v : v));

  for (const p of [0.1, 0.3, 0.75]) {
    it(`p = ${p}: drop count within 6σ, kept elements scaled by exactly 1/(1 − p), gradient through the same mask`, () =>
      scopeAsync(async () => {
        const xt = tensor(x, shape, { requiresGrad: true });
        const y = ops.dropout(xt, p, true, 23);
        const yh = await toArray(y);
        const dropped = Array.from(yh, (v) => v === 0);
        for (const [label, k, m] of subsets(dropped)) expectBinomial(k, m, p, `dropout p = ${p}, ${label}`);
        const scale = 1 / (1 - p);
        let worst = 0;
        for (let i = 0; i < n; i++) if (!dropped[i]) worst = Math.max(worst, Math.abs(yh[i] - x[i] * scale) / Math.abs(x[i] * scale));
        expect(worst).toBeLessThan(1e-6);
        // ∂ sum(y·w)/∂x = w·mask/(1 − p) with the forward's mask.
        const w = Float32Array.from(randomData(n, 6, -1, 1));
        backward(ops.sum(ops.mul(y, tensor(w, shape))));
        const g = await toArray(xt.grad!);
        let gworst = 0;
        for (let i = 0; i < n; i++) gworst = Math.max(gworst, Math.abs(g[i] - (dropped[i] ? 0 : w[i] * scale)));
        expect(gworst).toBeLessThan(1e-6 * scale);
      }));
  }

  it('seeded masks repeat; unseeded calls draw fresh masks', () =>
    scopeAsync(async () => {
      const xt = tensor(x, shape);
      const a = await toArray(ops.dropout(xt, 0.5, true, 99));
      const b = await toArray(ops.dropout(xt, 0.5, true, 99));
      expect(Array.from(a)).toEqual(Array.from(b));
      const u1 = await toArray(ops.dropout(xt, 0.5, true));
      const u2 = await toArray(ops.dropout(xt, 0.5, true));
      let same = 0;
      for (let i = 0; i < n; i++) if ((u1[i] === 0) === (u2[i] === 0)) same++;
      // Independent masks agree on half the elements: within 6σ of n/2.
      expectBinomial(same, n, 0.5, 'agreement of two unseeded masks');
    }));

  it('eval mode and p = 0 are the identity; p outside [0, 1) is rejected', () =>
    scopeAsync(async () => {
      const xt = tensor(x, shape);
      expect(Array.from(await toArray(ops.dropout(xt, 0.5, false)))).toEqual(Array.from(x));
      expect(Array.from(await toArray(ops.dropout(xt, 0, true, 1)))).toEqual(Array.from(x));
      expect(() => ops.dropout(xt, 1)).toThrow(RangeError);
      expect(() => ops.dropout(xt, -0.1)).toThrow(RangeError);
    }));
});

describe('label dropout (class_dropout_prob, the null class for CFG)', () => {
  it('in training, labels become the null class at rate p = 0.1 (6σ); never in eval; always where dropMask is 1', () =>
    scopeAsync(async () => {
      manualSeed(31);
      const classes = 10;
      const hidden = 4;
      const n = 20_000;
      const emb = new LabelEmbedder(classes, hidden, 0.1);
      const table = await toArray(emb.embeddingTable);
      const labelsHost = Int32Array.from(randomData(n, 8, 0, classes), Math.floor);
      const labels = tensor(labelsHost, [n], { dtype: 'i32' });
      /** Per row: 'null' if it is the null-class row, 'label' if its own label's row, else 'other'. */
      const classify = async (y: ReturnType<typeof emb.forward>) => {
        const a = await toArray(y);
        return Array.from(labelsHost, (l, i) => {
          const row = a.subarray(i * hidden, (i + 1) * hidden);
          const is = (r: number) => row.every((v, j) => v === table[r * hidden + j]);
          return is(classes) ? 'null' : is(l) ? 'label' : 'other';
        });
      };
      const train = await classify(emb.forward(labels, { train: true }));
      expect(train.includes('other')).toBe(false);
      expectBinomial(train.filter((c) => c === 'null').length, n, 0.1, 'null-class rate');
      const evalRows = await classify(emb.forward(labels, { train: false }));
      expect(evalRows.every((c) => c === 'label')).toBe(true);
      const mask = Float32Array.from({ length: n }, (_, i) => (i % 3 === 0 ? 1 : 0));
      const forced = await classify(emb.forward(labels, { dropMask: tensor(mask, [n]) }));
      expect(forced.every((c, i) => (mask[i] === 1 ? c === 'null' : c === 'label'))).toBe(true);
      emb.dispose();
    }));
});
