/**
 * Tests of the tests: the one comparison helper (test/helpers/compare.ts) fails on perturbed
 * data just outside its tolerance, passes just inside, names the worst element, and refuses a
 * tolerance override that is looser than the policy.
 */
import { describe, expect, it } from 'vitest';
import { allclose, derived, expectAllclose, relByMax, TOL } from '../helpers/compare.js';
import { randomData } from '../helpers/random.js';

const want = Array.from(randomData(60, 3, -2, 2));

describe('expectAllclose', () => {
  it('passes identical data and fails one element perturbed just past atol + rtol·|want|', () => {
    expectAllclose(want, want, TOL.exact);
    const { atol, rtol } = TOL.f32Elementwise;
    const i = 17;
    const bound = atol + rtol * Math.abs(want[i]);
    const inside = want.map((v, j) => (j === i ? v + 0.9 * bound : v));
    const outside = want.map((v, j) => (j === i ? v + 1.1 * bound : v));
    expectAllclose(inside, want, TOL.f32Elementwise);
    expect(() => expectAllclose(outside, want, TOL.f32Elementwise, { label: 'perturbed', shape: [6, 10] })).toThrow(
      /perturbed: 1\/60 elements exceed .*worst at \[1, 7\]: actual .* expected .*abs err/,
    );
    expect(() =>
      expectAllclose(
        want.map((v) => v * (1 + 1e-9)),
        want,
        TOL.exact,
      ),
    ).toThrow(/60\/60 elements exceed/);
  });

  it('reports the worst element (index, got, want) among several failures', () => {
    const got = [...want];
    got[5] += 0.01;
    got[40] += 0.5;
    const r = allclose(got, want, TOL.f32Elementwise);
    expect(r.ok).toBe(false);
    expect(r.worstIndex).toBe(40);
    expect(r.worstActual).toBe(got[40]);
    expect(r.worstExpected).toBe(want[40]);
  });

  it('fails NaN where a number is wanted, a number where NaN is wanted, and a length mismatch', () => {
    expect(() => expectAllclose([...want.slice(0, 59), NaN], want, TOL.f16)).toThrow(/worst at flat 59/);
    expect(() => expectAllclose(want, [...want.slice(0, 59), NaN], TOL.f16)).toThrow();
    expect(() => expectAllclose(want.slice(1), want, TOL.f16)).toThrow(/length/);
  });

  it('models: atol relative to max|want| — a 1e-4-of-scale error fails modelForward, passes modelGradient', () => {
    const scale = Math.max(...want.map(Math.abs));
    const got = want.map((v, j) => (j === 0 ? v + 2e-4 * scale : v));
    expect(relByMax(got, want)).toBeCloseTo(2e-4, 10);
    expect(() => expectAllclose(got, want, TOL.modelForward)).toThrow();
    expectAllclose(got, want, TOL.modelGradient);
  });

  it('caller-scaled families need the scale; overrides may only tighten', () => {
    expect(() => expectAllclose(want, want, TOL.f32Reduction)).toThrow(/scale must be given/);
    expect(() => expectAllclose(want, want, TOL.attention, { scale: 2 })).toThrow(/scale must be given/);
    expectAllclose(want, want, TOL.f32Reduction, { scale: 10 });
    expect(() => expectAllclose(want, want, TOL.f32Elementwise, { tighten: { rtol: 1e-4 } })).toThrow(/looser than the policy/);
    expect(() => expectAllclose(want, want, TOL.attention, { tighten: { atol: 1e-3 } })).toThrow(/looser than the policy/);
    const got = want.map((v, j) => (j === 3 ? v + 5e-7 : v));
    expectAllclose(got, want, TOL.f32Elementwise);
    expect(() => expectAllclose(got, want, TOL.f32Elementwise, { tighten: { atol: 1e-7, rtol: 1e-7 } })).toThrow();
    expect(() => expectAllclose(got, want, derived({ atol: 1e-7, rtol: 0 }))).toThrow();
  });
});
