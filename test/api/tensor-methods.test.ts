/**
 * Tensor methods are declared on the class (so the bundled d.ts has them) and run wherever the
 * differentiable ops are loaded: here only through deep imports of src/tensor and src/nn, never
 * the package root. Values are exact (small integers), so equality is the check.
 */
import { describe, expect, it } from 'vitest';
import { Linear } from '../../src/nn/layers.js';
import { tensor, toArray } from '../../src/tensor/creation.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { useGpu } from '../helpers/setup.js';

useGpu();

describe('Tensor methods from deep imports', () => {
  it('are own members of the class, not patched in by the package entry', () => {
    for (const m of ['add', 'sum', 'mean', 'matmul', 'reshape', 'backward', 'toArray', 'exp', 'relu', 'gelu']) {
      expect(typeof (Tensor.prototype as unknown as Record<string, unknown>)[m], m).toBe('function');
    }
    expect(Object.getOwnPropertyDescriptor(Tensor.prototype, 'T')?.get).toBeTypeOf('function');
  });

  it('run through the ops that src/nn loads, with gradients', async () => {
    expect(Linear).toBeTypeOf('function'); // the import that brought the ops in
    const x = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    x.requiresGrad = true;
    const y = x.mul(2).add(1).sum([1]);
    expect(Array.from(await y.toArray())).toEqual([15, 33]);
    y.sum().backward();
    expect(Array.from(await toArray(x.grad!))).toEqual([2, 2, 2, 2, 2, 2]);
    expect(await x.T.matmul(x).reshape(9).max().item()).toBe(45);
    expect(await x.relu().neg().tolist()).toEqual([
      [-1, -2, -3],
      [-4, -5, -6],
    ]);
  });
});
