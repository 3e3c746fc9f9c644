/**
 * Reads a golden fixture (reference PyTorch outputs): from ../shared/fixtures/golden by default,
 * or from this repository's test/fixtures/golden (made by tools/golden) with `{ dir: REPO_GOLDEN_DIR }`.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSafetensors, openSafetensors, type LoadedTensor } from '../../src/io/safetensors.js';
import type { HostTensor } from '../../src/nn/module.js';
import { toArray } from '../../src/tensor/creation.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { relByMax, TOL } from './compare.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const GOLDEN_DIR = process.env.RAE_GOLDEN_DIR ?? path.resolve(here, '../../../shared/fixtures/golden');
export const REPO_GOLDEN_DIR = path.resolve(here, '../fixtures/golden');

export interface Golden {
  meta: { model: string; config: Record<string, unknown>; [k: string]: unknown };
  params: Map<string, HostTensor>;
  inputs: Map<string, LoadedTensor>;
  outputs: Map<string, LoadedTensor>;
  grads: Map<string, LoadedTensor>;
}

/** `name` without an extension means `name.safetensors`. */
export function goldenPath(name: string, opts: { dir?: string } = {}): string {
  const dir = opts.dir ?? GOLDEN_DIR;
  const p = path.join(dir, path.extname(name) ? name : `${name}.safetensors`);
  if (!existsSync(p))
    throw new Error(`golden fixture ${p} is missing${dir === GOLDEN_DIR ? ' (set RAE_GOLDEN_DIR to the fixtures folder)' : ''}`);
  return p;
}

export function loadGolden(name: string, opts: { dir?: string } = {}): Golden {
  const file = goldenPath(name, opts);
  const meta = JSON.parse(openSafetensors(file).metadata.meta);
  const all = loadSafetensors(file);
  const pick = (prefix: string) => new Map([...all].filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
  return {
    meta,
    params: pick('param.') as Map<string, HostTensor>,
    inputs: pick('input.'),
    outputs: pick('output.'),
    grads: pick('grad.'),
  };
}

export { relByMax };

/**
 * Gradients that are mathematically zero, by parameter name. In attention without anything
 * between the key projection and the scores (HF ViT's `*.attention.attention.key.bias`, the RAE
 * decoder), a key bias adds the same q·b to every score of a query, which the softmax cancels, so
 * its gradient is exactly 0 and a reference holds only f32 rounding noise (≈ 5e-8 in the
 * fixtures). DiT^DH's fused `attn.qkv.bias` key slice is NOT in this list: q/k RMSNorm and RoPE
 * sit between projection and scores there, and the fixture's key-slice gradient is ≈ 1.5e-2.
 */
export const ZERO_GRADIENT_KEYS: readonly RegExp[] = [/(^|\.)attention\.attention\.key\.bias$/];

/**
 * A mathematically zero gradient passes when max|got − ref| ≤ 1e-5 · max|gradient of the matching
 * weight| (the scale the bias gradient would have if it were not zero). Measured on the RAE
 * decoder fixture: PyTorch's noise is 1.0–1.3e-7 of that scale, ours (lavapipe) 1.2–2.8e-7, so
 * the bound leaves a ~35× margin for other summation orders while failing any real gradient.
 */
export const ZERO_GRADIENT_BOUND = 1e-5;

const isZeroGradient = (k: string) => ZERO_GRADIENT_KEYS.some((re) => re.test(k));
const maxAbsOf = (a: ArrayLike<number>) => Array.from(a, Math.abs).reduce((m, v) => Math.max(m, v), 0);

/**
 * Compares every `grad.*` of a fixture with the gradients autograd left on `tensors` (by key).
 * Returns one error per fixture key, in the models' gradient convention — a key passes when its
 * error is below TOL.modelGradient.atol (1e-3): max|got − ref| / max|ref| for ordinary keys; for
 * the mathematically zero ones (ZERO_GRADIENT_KEYS) max|got − ref| relative to the matching
 * weight's gradient scale, multiplied by 1e-3 / ZERO_GRADIENT_BOUND so that the same 1e-3
 * threshold applies their tighter bound. A missing gradient is Infinity.
 */
export async function gradientErrors(g: Golden, tensors: Map<string, Tensor>): Promise<Map<string, number>> {
  const errors = new Map<string, number>();
  for (const [k, ref] of g.grads) {
    const t = tensors.get(k);
    if (!t) throw new Error(`the fixture has a gradient for ${k}, which the model does not have`);
    if (!t.grad) {
      errors.set(k, Infinity);
      continue;
    }
    const got = await toArray(t.grad);
    if (!isZeroGradient(k)) {
      errors.set(k, relByMax(got, ref.data));
      continue;
    }
    const weightKey = k.replace(/bias$/, 'weight');
    const weight = g.grads.get(weightKey);
    if (!weight) throw new Error(`${k}: the fixture has no ${weightKey} gradient to scale the zero-gradient check`);
    const scale = maxAbsOf(weight.data);
    if (maxAbsOf(ref.data) > ZERO_GRADIENT_BOUND * scale) {
      throw new Error(`${k} is listed as mathematically zero but the reference gradient reaches ${maxAbsOf(ref.data)} (scale ${scale})`);
    }
    let diff = 0;
    for (let i = 0; i < got.length; i++) diff = Math.max(diff, Math.abs(got[i] - ref.data[i]));
    if (got.length !== ref.data.length) diff = Infinity;
    errors.set(k, (diff / scale) * (1e-3 / ZERO_GRADIENT_BOUND));
  }
  return errors;
}

/**
 * The full gradient check of a golden test: every fixture gradient within the models' bound,
 * and the fixture's gradient keys exactly the tensors that `expected` names (the model's
 * trainable parameters plus any inputs the test differentiates), so none goes unchecked.
 */
export async function expectGradientsMatch(
  g: Golden,
  tensors: Map<string, Tensor>,
  expected: Iterable<string>,
): Promise<Map<string, number>> {
  const errors = await gradientErrors(g, tensors);
  const want = [...expected].sort();
  const have = [...errors.keys()].sort();
  if (want.join('\n') !== have.join('\n')) {
    const missing = want.filter((k) => !errors.has(k));
    const extra = have.filter((k) => !want.includes(k));
    throw new Error(`gradient keys differ: not in the fixture [${missing.join(', ')}]; not expected [${extra.join(', ')}]`);
  }
  const bad = [...errors].filter(([, e]) => !(e < TOL.modelGradient.atol));
  if (bad.length)
    throw new Error(`gradients off the reference (error ≥ ${TOL.modelGradient.atol}): ${bad.map(([k, e]) => `${k}: ${e}`).join('; ')}`);
  return errors;
}
