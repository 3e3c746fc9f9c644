/**
 * Gradient checks: the GPU autograd gradient of L = Σ f(x)·w (w a fixed random weight, so
 * non-scalar outputs are covered) against central differences of the same function computed in
 * float64 by the CPU reference.
 */
import { compareArrays, type CompareResult } from '../cpu/allclose.js';
import { numericalGradient } from '../cpu/finite-diff.js';
import type { NDArray } from '../cpu/ndarray.js';
import { tensor, toArray } from '../tensor/creation.js';
import { scopeAsync } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { backward } from './tape.js';
import { mul } from './ops/elementwise.js';
import { sum } from './ops/reduce.js';

export interface GradCheckInput {
  data: Float64Array | number[];
  shape: number[];
  /** Default true. */
  requiresGrad?: boolean;
}

export interface GradCheckOptions {
  atol?: number;
  rtol?: number;
  eps?: number;
  /** Seed of the output weights w. */
  seed?: number;
}

export interface GradCheckResult {
  output: CompareResult;
  grads: (CompareResult | null)[];
  ok: boolean;
  message: string;
}

function lcg(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

export async function gradCheck(
  gpu: (xs: Tensor[]) => Tensor,
  cpu: (xs: NDArray[]) => NDArray,
  inputs: GradCheckInput[],
  opts: GradCheckOptions = {},
): Promise<GradCheckResult> {
  const atol = opts.atol ?? 1e-4;
  const rtol = opts.rtol ?? 1e-3;
  const nds: NDArray[] = inputs.map((i) => ({ data: Float64Array.from(i.data), shape: [...i.shape] }));
  const ref = cpu(nds);
  const rnd = lcg(opts.seed ?? 12345);
  const w = Float64Array.from({ length: ref.data.length }, () => rnd());
  return scopeAsync(async () => {
    const ts = inputs.map((i) => tensor(Float32Array.from(i.data), i.shape, { requiresGrad: i.requiresGrad ?? true }));
    const y = gpu(ts);
    if (y.shape.length !== ref.shape.length || y.shape.some((d, i) => d !== ref.shape[i])) {
      throw new Error(`gradCheck: GPU output shape [${y.shape}] differs from the reference's [${ref.shape}]`);
    }
    const wt = tensor(Float32Array.from(w), y.shape);
    const loss = sum(mul(y, wt));
    const outGot = await toArray(y);
    const output = compareArrays(outGot, ref.data, { atol, rtol, shape: ref.shape, label: 'output' });
    backward(loss);
    const grads: (CompareResult | null)[] = [];
    for (let k = 0; k < inputs.length; k++) {
      if (inputs[k].requiresGrad === false) {
        grads.push(null);
        continue;
      }
      const f = (x: NDArray) => {
        const args = nds.map((a, j) => (j === k ? x : a));
        const out = cpu(args);
        let s = 0;
        for (let i = 0; i < out.data.length; i++) s += out.data[i] * w[i];
        return s;
      };
      const num = numericalGradient(f, nds[k], opts.eps ?? 1e-6);
      const g = ts[k].grad;
      if (!g) {
        grads.push({
          ok: false,
          maxAbsErr: Infinity,
          maxRelErr: Infinity,
          worstIndex: -1,
          worstActual: NaN,
          worstExpected: NaN,
          message: `input ${k}: no gradient was computed`,
        });
        continue;
      }
      grads.push(compareArrays(await toArray(g), num.data, { atol, rtol, shape: inputs[k].shape, label: `grad[${k}]` }));
      g.dispose();
      ts[k].grad = null;
    }
    const ok = output.ok && grads.every((g) => g === null || g.ok);
    const message = [output, ...grads]
      .filter((r): r is CompareResult => !!r && !r.ok)
      .map((r) => r.message)
      .join('\n');
    return { output, grads, ok, message };
  });
}
