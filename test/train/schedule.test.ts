/**
 * Learning-rate schedules (spec §3.7, §4.3) at their breakpoints, against values worked out by
 * hand from the definitions (linear warmup to base, cosine to final; DiT^DH: hold, linear decay,
 * constant). Tolerance: 1e-12 relative (float64 arithmetic on both sides).
 */
import { describe, expect, it } from 'vitest';
import { holdLinear, warmupCosine } from '../../src/train/schedule.js';

const close = (got: number, want: number) =>
  expect(Math.abs(got - want), `${got} vs ${want}`).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(want)));

describe('warmupCosine', () => {
  const base = 1e-3;
  const final = 1e-4;
  const total = 110;
  const warmup = 10;

  it('linear warmup from zero: (step + 1)/warmup · base, reaching base at the last warmup step', () => {
    close(warmupCosine(0, total, base, final, warmup), base / 10);
    close(warmupCosine(4, total, base, final, warmup), base / 2);
    close(warmupCosine(9, total, base, final, warmup), base);
  });

  it('flat warmup (warmup_from_zero: false) holds base', () => {
    for (const s of [0, 5, 9]) close(warmupCosine(s, total, base, final, warmup, false), base);
  });

  it('cosine: base at the end of warmup, the midpoint halfway, final at the end and after', () => {
    close(warmupCosine(10, total, base, final, warmup), base);
    // p = 1/4: final + (base − final)·(1 + cos(π/4))/2
    close(warmupCosine(35, total, base, final, warmup), final + ((base - final) * (1 + Math.SQRT1_2)) / 2);
    close(warmupCosine(60, total, base, final, warmup), (base + final) / 2);
    close(warmupCosine(110, total, base, final, warmup), final);
    close(warmupCosine(500, total, base, final, warmup), final);
  });

  it('decreases monotonically after warmup', () => {
    let prev = Infinity;
    for (let s = warmup; s <= total; s++) {
      const v = warmupCosine(s, total, base, final, warmup);
      expect(v).toBeLessThanOrEqual(prev);
      prev = v;
    }
  });
});

describe('holdLinear (DiT^DH: 2e-4 held for 40 epochs, linear to 2e-5 at epoch 800)', () => {
  const base = 2e-4;
  const final = 2e-5;
  const hold = 40;
  const end = 800;

  it('holds base before and at the hold boundary', () => {
    close(holdLinear(0, base, final, hold, end), base);
    close(holdLinear(39, base, final, hold, end), base);
    close(holdLinear(40, base, final, hold, end), base);
  });

  it('decays linearly: the midpoint is the mean, one step in is base − (base − final)/760', () => {
    close(holdLinear(41, base, final, hold, end), base - (base - final) / 760);
    close(holdLinear(420, base, final, hold, end), (base + final) / 2);
    close(holdLinear(799, base, final, hold, end), final + (base - final) / 760);
  });

  it('is final at and after decayEnd', () => {
    close(holdLinear(800, base, final, hold, end), final);
    close(holdLinear(1400, base, final, hold, end), final);
  });
});
