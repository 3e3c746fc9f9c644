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
  if (!existsSync(p)) throw new Error(`golden fixture ${p} is missing${dir === GOLDEN_DIR ? ' (set RAE_GOLDEN_DIR to the fixtures folder)' : ''}`);
  return p;
}

export function loadGolden(name: string, opts: { dir?: string } = {}): Golden {
  const file = goldenPath(name, opts);
  const meta = JSON.parse(openSafetensors(file).metadata.meta);
  const all = loadSafetensors(file);
  const pick = (prefix: string) => new Map([...all].filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
  return { meta, params: pick('param.') as Map<string, HostTensor>, inputs: pick('input.'), outputs: pick('output.'), grads: pick('grad.') };
}

/** max |a − e| / max |e| — the models' tolerance convention. */
export function relByMax(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} vs ${expected.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < expected.length; i++) {
    num = Math.max(num, Math.abs(actual[i] - expected[i]));
    den = Math.max(den, Math.abs(expected[i]));
  }
  return den === 0 ? num : num / den;
}

/**
 * Compares every `grad.*` of a fixture with the gradients autograd left on `tensors` (by key).
 * Returns the worst error per key; a key whose true gradient is 0 (a key bias cannot change the
 * softmax, so the reference holds rounding noise) is compared by absolute error against the
 * scale of all gradients instead of relative-by-max.
 */
export async function gradientErrors(g: Golden, tensors: Map<string, Tensor>): Promise<Map<string, number>> {
  const scale = Math.max(...[...g.grads.values()].map((r) => Math.max(...Array.from(r.data, Math.abs))));
  const errors = new Map<string, number>();
  for (const [k, ref] of g.grads) {
    const t = tensors.get(k);
    if (!t) throw new Error(`the fixture has a gradient for ${k}, which the model does not have`);
    if (!t.grad) {
      errors.set(k, Infinity);
      continue;
    }
    const got = Array.from(await toArray(t.grad));
    const refMax = Math.max(...Array.from(ref.data, Math.abs));
    errors.set(k, refMax < 1e-6 * scale ? Math.max(...got.map(Math.abs)) / scale : relByMax(got, ref.data));
  }
  return errors;
}
