/**
 * Multinomial logistic regression on the GPU with the engine's own ops, the classifier of the
 * linear probe: logits = X·W + b (W [D, C]), mean softmax cross entropy, AdamW (weight decay on W
 * only, as probes usually do). Features are standardised on the host with the training set's
 * mean and standard deviation before they are uploaded once; a step reads nothing back.
 */
import * as ops from '../autograd/ops/index.js';
import { noGrad } from '../autograd/tape.js';
import { AdamW } from '../nn/optim.js';
import { copyInto } from '../tensor/copy.js';
import { tensor, toArray } from '../tensor/creation.js';
import { yieldIfBusy } from '../tensor/pace.js';
import { scope } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { permutation, Rng } from '../train/data/random.js';

export class ProbeError extends Error {
  override name = 'ProbeError';
}

/** Rows × dim features, row-major, with one class label per row. */
export interface LabelledFeatures {
  x: Float32Array;
  labels: Int32Array;
  dim: number;
}

export const rowsOf = (f: LabelledFeatures): number => (f.dim === 0 ? 0 : f.x.length / f.dim);

/** Throws on a shape mismatch, a NaN/±Inf value (first row and column named) or a label outside [0, classes). */
export function checkLabelledFeatures(f: LabelledFeatures, classes: number, what: string): void {
  const n = rowsOf(f);
  if (!Number.isInteger(f.dim) || f.dim < 1 || !Number.isInteger(n))
    throw new ProbeError(`${what}: ${f.x.length} values are not rows of ${f.dim} features`);
  if (f.labels.length !== n) throw new ProbeError(`${what}: ${n} feature rows but ${f.labels.length} labels`);
  if (n === 0) throw new ProbeError(`${what}: no rows`);
  let bad = 0;
  let first = -1;
  for (let i = 0; i < f.x.length; i++) {
    if (!Number.isFinite(f.x[i])) {
      if (first < 0) first = i;
      bad++;
    }
  }
  if (bad)
    throw new ProbeError(
      `${what}: ${bad} feature value(s) are NaN or ±Inf, the first at row ${Math.floor(first / f.dim)}, column ${first % f.dim} (a diverged or broken encoder?)`,
    );
  for (let i = 0; i < n; i++) {
    const y = f.labels[i];
    if (!Number.isInteger(y) || y < 0 || y >= classes) throw new ProbeError(`${what}: label ${y} of row ${i} is outside [0, ${classes})`);
  }
}

export interface Standardizer {
  mean: Float32Array;
  std: Float32Array;
}

/** Per-feature mean and population standard deviation in float64 (a constant feature gets std 1). */
export function fitStandardizer(x: Float32Array, dim: number): Standardizer {
  const n = x.length / dim;
  const mean = new Float64Array(dim);
  const m2 = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) mean[j] += x[i * dim + j];
  for (let j = 0; j < dim; j++) mean[j] /= n;
  for (let i = 0; i < n; i++)
    for (let j = 0; j < dim; j++) {
      const d = x[i * dim + j] - mean[j];
      m2[j] += d * d;
    }
  const std = new Float32Array(dim);
  for (let j = 0; j < dim; j++) {
    const s = Math.sqrt(m2[j] / n);
    // Relative floor: a feature that only varies by round-off is constant, not signal.
    std[j] = s > 1e-6 * (Math.abs(mean[j]) + 1e-30) && s > 0 ? s : 1;
  }
  return { mean: Float32Array.from(mean), std };
}

export function standardize(x: Float32Array, dim: number, s: Standardizer): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const j = i % dim;
    out[i] = (x[i] - s.mean[j]) / s.std[j];
  }
  return out;
}

export interface LogRegOptions {
  epochs: number;
  lr?: number;
  /** AdamW's decoupled weight decay, applied to W (not b). */
  weightDecay?: number;
  betas?: [number, number];
  eps?: number;
  /** Rows per step; 0 (default) or ≥ n = full batch, one step per epoch. */
  batch?: number;
  /** Seeds the mini-batch order. */
  seed?: number;
  /** Initial W [D·C] and b [C]; zeros by default (the problem is convex). */
  init?: { W: Float32Array; b: Float32Array };
  /** Keep the loss of every step (full batch: every epoch) instead of one per epoch. */
  lossEveryStep?: boolean;
}

export interface LogRegModel {
  dim: number;
  classes: number;
  /** [D, C] row-major. */
  W: Float32Array;
  b: Float32Array;
}

export interface LogRegFit {
  model: LogRegModel;
  /** Mean cross entropy before each recorded update (the last step's of an epoch, or every step). */
  losses: number[];
  steps: number;
}

export const PROBE_DEFAULTS = { lr: 5e-2, betas: [0.9, 0.999] as [number, number], eps: 1e-8 };

/** Trains W, b on (already standardised) features. Checks the input first. */
export async function trainLogReg(data: LabelledFeatures, classes: number, opts: LogRegOptions): Promise<LogRegFit> {
  const [fit] = await trainLogRegGrid(data, classes, { ...opts, weightDecays: [opts.weightDecay ?? 0] });
  return fit;
}

/**
 * Trains one classifier per weight decay at once, as a single model: W [D, K·C] (candidate k in
 * columns k·C … k·C + C − 1), logits [n, K·C] seen as [n·K, C] against each label repeated K
 * times, the cross entropy ×K so each candidate gets exactly the gradient of its own mean loss.
 * AdamW is elementwise, so the candidates do not interact; distinct decays are applied as
 * AdamW's decoupled decay p ← p·(1 − lr·wd) per column before the (decay-free) update. K fits
 * cost about one: a step is the same dozen dispatches, which dominate at probe sizes.
 * `losses` are the mean over candidates; `init` is used for every candidate.
 */
export async function trainLogRegGrid(
  data: LabelledFeatures,
  classes: number,
  opts: Omit<LogRegOptions, 'weightDecay'> & { weightDecays: readonly number[] },
): Promise<LogRegFit[]> {
  if (!Number.isInteger(classes) || classes < 2) throw new ProbeError(`a probe needs at least 2 classes, got ${classes}`);
  checkLabelledFeatures(data, classes, 'training features');
  if (!Number.isInteger(opts.epochs) || opts.epochs < 1) throw new ProbeError(`epochs must be a positive integer, got ${opts.epochs}`);
  const wds = opts.weightDecays;
  if (wds.length === 0 || wds.some((w) => !(w >= 0))) throw new ProbeError(`weight decays must be ≥ 0, got ${JSON.stringify(wds)}`);
  const { dim } = data;
  const C = classes;
  const K = wds.length;
  const n = rowsOf(data);
  const batch = !opts.batch || opts.batch >= n ? n : opts.batch;
  const init = opts.init ?? { W: new Float32Array(dim * C), b: new Float32Array(C) };
  if (init.W.length !== dim * C || init.b.length !== C)
    throw new ProbeError(`initial W/b have ${init.W.length}/${init.b.length} values, expected ${dim}·${C}/${C}`);
  const W0 = new Float32Array(dim * K * C);
  for (let d = 0; d < dim; d++) for (let k = 0; k < K; k++) W0.set(init.W.subarray(d * C, (d + 1) * C), (d * K + k) * C);
  const b0 = new Float32Array(K * C);
  for (let k = 0; k < K; k++) b0.set(init.b, k * C);
  const repeated = (rows: ArrayLike<number>) => {
    const y = new Int32Array(rows.length * K);
    for (let i = 0; i < rows.length; i++) y.fill(data.labels[rows[i]], i * K, (i + 1) * K);
    return tensor(y, [y.length], { dtype: 'i32' });
  };

  const lr = opts.lr ?? PROBE_DEFAULTS.lr;
  const sameDecay = wds.every((w) => w === wds[0]);
  const W = tensor(W0, [dim, K * C], { requiresGrad: true });
  const b = tensor(b0, [K * C], { requiresGrad: true });
  const X = tensor(data.x, [n, dim]);
  const Y = repeated(Int32Array.from({ length: n }, (_, i) => i));
  const decay = sameDecay
    ? null
    : tensor(
        Float32Array.from({ length: K * C }, (_, j) => 1 - lr * wds[Math.floor(j / C)]),
        [K * C],
      );
  const common = { lr, betas: opts.betas ?? PROBE_DEFAULTS.betas, eps: opts.eps ?? PROBE_DEFAULTS.eps };
  const optW = new AdamW([W], { ...common, weightDecay: sameDecay ? wds[0] : 0 });
  const optB = new AdamW([b], { ...common, weightDecay: 0 });
  const lossTensors: Tensor[] = [];
  let steps = 0;
  try {
    for (let epoch = 0; epoch < opts.epochs; epoch++) {
      const order = batch === n ? null : permutation(n, new Rng(opts.seed ?? 0, 0x9b0e, epoch));
      for (let start = 0; start < n; start += batch) {
        const count = Math.min(batch, n - start);
        const loss = scope(() => {
          let xb = X;
          let yb = Y;
          if (order) {
            const rows = order.subarray(start, start + count);
            xb = ops.indexSelect(X, 0, tensor(rows, [count], { dtype: 'i32' }));
            // indexSelect gathers floats only; the batch's labels are a few bytes to upload.
            yb = repeated(rows);
          }
          const logits = ops.reshape(ops.add(ops.matmul(xb, W), b), [count * K, C]);
          const ce = ops.crossEntropy(logits, yb);
          const l = K === 1 ? ce : ops.mul(ce, K);
          l.backward();
          if (decay) noGrad(() => copyInto(W, ops.mul(W, decay)));
          optW.step();
          optB.step();
          optW.zeroGrad();
          optB.zeroGrad();
          return l;
        });
        steps++;
        if (opts.lossEveryStep || start + batch >= n) lossTensors.push(loss.keep());
        else loss.dispose();
        await yieldIfBusy();
      }
    }
    const losses: number[] = [];
    for (const t of lossTensors) losses.push((await toArray(t))[0] / K);
    const Wall = (await toArray(W)) as Float32Array;
    const ball = (await toArray(b)) as Float32Array;
    return wds.map((_, k) => {
      const Wk = new Float32Array(dim * C);
      for (let d = 0; d < dim; d++) Wk.set(Wall.subarray((d * K + k) * C, (d * K + k + 1) * C), d * C);
      return { model: { dim, classes: C, W: Wk, b: ball.slice(k * C, (k + 1) * C) }, losses, steps };
    });
  } finally {
    for (const t of lossTensors) t.dispose();
    optW.dispose();
    optB.dispose();
    for (const t of [W, b, X, Y, decay]) t?.dispose();
  }
}

/** Arg-max class of every row, computed on the GPU in chunks (ties go to the lower class). */
export async function predictLogReg(model: LogRegModel, x: Float32Array, chunk = 8192): Promise<Int32Array> {
  const { dim, classes } = model;
  const n = x.length / dim;
  const out = new Int32Array(n);
  const W = tensor(model.W, [dim, classes]);
  const b = tensor(model.b, [classes]);
  try {
    for (let start = 0; start < n; start += chunk) {
      const count = Math.min(chunk, n - start);
      const pred = noGrad(() =>
        scope(() => ops.argmax(ops.add(ops.matmul(tensor(x.subarray(start * dim, (start + count) * dim), [count, dim]), W), b), 1)),
      );
      out.set(await toArray(pred), start);
      pred.dispose();
      await yieldIfBusy();
    }
  } finally {
    W.dispose();
    b.dispose();
  }
  return out;
}

/** Mean softmax cross entropy of the model on (standardised) rows, in float64 on the host. */
export function meanCrossEntropy(model: LogRegModel, x: Float32Array, labels: Int32Array): number {
  const { dim: D, classes: C, W, b } = model;
  const n = labels.length;
  const z = new Float64Array(C);
  let total = 0;
  for (let i = 0; i < n; i++) {
    let mx = -Infinity;
    for (let c = 0; c < C; c++) {
      let s = b[c];
      for (let d = 0; d < D; d++) s += x[i * D + d] * W[d * C + c];
      z[c] = s;
      if (s > mx) mx = s;
    }
    let se = 0;
    for (let c = 0; c < C; c++) se += Math.exp(z[c] - mx);
    total += mx + Math.log(se) - z[labels[i]];
  }
  return total / n;
}

export function accuracyOf(pred: Int32Array, labels: Int32Array): number {
  if (pred.length !== labels.length) throw new ProbeError(`${pred.length} predictions for ${labels.length} labels`);
  let hit = 0;
  for (let i = 0; i < pred.length; i++) if (pred[i] === labels[i]) hit++;
  return pred.length ? hit / pred.length : Number.NaN;
}
