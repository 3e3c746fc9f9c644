import { describe, expect, it } from 'vitest';
import { compareArrays, relErrorByMax } from '../../src/cpu/index.js';

describe('compareArrays', () => {
  it('passes within atol + rtol*|e|', () => {
    const r = compareArrays([1.001, 2], [1, 2], { atol: 0, rtol: 1e-3 });
    expect(r.ok).toBe(true);
    expect(r.maxAbsErr).toBeCloseTo(0.001, 12);
    expect(r.message).toMatch(/^ok/);
  });

  it('reports the worst element with its multi-index', () => {
    const r = compareArrays([0, 0, 0, 0, 0, 5], [0, 0, 0, 0, 0, 1], { atol: 1e-6, rtol: 0, shape: [2, 3], label: 'matmul' });
    expect(r.ok).toBe(false);
    expect(r.worstIndex).toBe(5);
    expect(r.worstActual).toBe(5);
    expect(r.worstExpected).toBe(1);
    expect(r.maxRelErr).toBe(4);
    expect(r.message).toContain('matmul');
    expect(r.message).toContain('[1, 2]');
  });

  it('NaN positions must match; infinities must be equal', () => {
    expect(compareArrays([NaN, 1], [NaN, 1]).ok).toBe(true);
    expect(compareArrays([NaN, 1], [0, 1]).ok).toBe(false);
    expect(compareArrays([0, 1], [NaN, 1]).ok).toBe(false);
    expect(compareArrays([Infinity], [Infinity]).ok).toBe(true);
    expect(compareArrays([Infinity], [-Infinity]).ok).toBe(false);
    const bad = compareArrays([1, 2], [1, NaN], { shape: [2] });
    expect(bad.worstIndex).toBe(1);
  });

  it('length mismatch fails', () => {
    expect(compareArrays([1], [1, 2]).ok).toBe(false);
  });
});

describe('relErrorByMax', () => {
  it('is max|a-e| / max|e|', () => {
    expect(relErrorByMax([1, 2.5, -4], [1, 2, -4])).toBeCloseTo(0.5 / 4, 15);
    expect(relErrorByMax([0, 0], [0, 0])).toBe(0);
    expect(relErrorByMax([1e-3, 0], [0, 0])).toBe(Infinity);
    expect(relErrorByMax([NaN], [1])).toBeNaN();
    expect(relErrorByMax([Infinity, 1], [Infinity, 1])).toBe(0);
  });
});
