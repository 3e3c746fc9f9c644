/**
 * The float64 symmetric eigensolver behind FID: closed forms (diagonal, 2×2, repeated and zero
 * eigenvalues) and, on random and rank-deficient matrices, the defining properties — residual
 * ‖A·v − λ·v‖, orthonormal vectors, ascending values, the values-only path equal to the full
 * one. Bounds are multiples of n·ε·‖A‖ (Householder + QL is backward stable).
 */
import { describe, expect, it } from 'vitest';
import { symmetricEigen } from '../../src/eval/symmetric-eigen.js';
import { randomData } from '../helpers/random.js';

const EPS = Number.EPSILON;

function randomSymmetric(n: number, seed: number, rank = n): Float64Array {
  const x = randomData(n * rank, seed);
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = 0; k < rank; k++) s += x[i * rank + k] * x[j * rank + k];
      a[i * n + j] = s - (rank === n ? n / 6 : 0); // full rank: shift so some eigenvalues are negative
    }
  }
  return a;
}

function check(a: Float64Array, n: number): Float64Array {
  const { values, vectors } = symmetricEigen(a, n, true);
  const v = vectors as Float64Array;
  const norm = Math.max(1e-300, ...Array.from(values, Math.abs));
  let residual = 0;
  let orthogonality = 0;
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < n; p++) {
      let s = 0;
      for (let q = 0; q < n; q++) s += a[p * n + q] * v[i * n + q];
      residual = Math.max(residual, Math.abs(s - values[i] * v[i * n + p]));
    }
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let q = 0; q < n; q++) s += v[i * n + q] * v[j * n + q];
      orthogonality = Math.max(orthogonality, Math.abs(s - (i === j ? 1 : 0)));
    }
  }
  expect(residual).toBeLessThan(20 * n * EPS * norm);
  expect(orthogonality).toBeLessThan(20 * n * EPS);
  for (let i = 1; i < n; i++) expect(values[i]).toBeGreaterThanOrEqual(values[i - 1]);
  const only = symmetricEigen(a, n, false).values;
  for (let i = 0; i < n; i++) expect(Math.abs(only[i] - values[i])).toBeLessThan(20 * n * EPS * norm);
  return values;
}

describe('symmetricEigen', () => {
  it('matches closed forms', () => {
    expect(Array.from(check(new Float64Array([3, 0, 0, 0, -1, 0, 0, 0, 2]), 3))).toEqual([-1, 2, 3]);
    // [[2, 1], [1, 2]]: eigenvalues 1 and 3.
    const two = check(new Float64Array([2, 1, 1, 2]), 2);
    expect(Math.abs(two[0] - 1)).toBeLessThan(4 * EPS);
    expect(Math.abs(two[1] - 3)).toBeLessThan(8 * EPS);
    expect(Array.from(check(new Float64Array(16), 4))).toEqual([0, 0, 0, 0]);
    const identity = new Float64Array(25);
    for (let i = 0; i < 5; i++) identity[i * 6] = 1;
    expect(Array.from(check(identity, 5))).toEqual([1, 1, 1, 1, 1]);
    expect(Array.from(check(new Float64Array([7]), 1))).toEqual([7]);
  });

  it.each([
    [3, 1],
    [17, 2],
    [64, 3],
    [150, 4],
  ])('random %i×%i symmetric (mixed signs): residual and orthogonality', (n, seed) => {
    check(randomSymmetric(n, seed), n);
  });

  it('rank-deficient positive semi-definite (rank 10 of 80): the null space comes out as ~0', () => {
    const values = check(randomSymmetric(80, 5, 10), 80);
    const largest = values[79];
    for (let i = 0; i < 70; i++) expect(Math.abs(values[i])).toBeLessThan(80 * EPS * largest);
    expect(values[70]).toBeGreaterThan(1e-3 * largest);
  });

  it('rejects a mis-sized input', () => {
    expect(() => symmetricEigen(new Float64Array(5), 2, false)).toThrow(/expected 4 values for 2×2, got 5/);
  });
});
