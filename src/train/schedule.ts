/** Learning-rate schedules used by the RAE recipes (spec §3.7, §4.3). */

/** Linear warmup (from 0 or flat at base) then cosine decay to `final`. */
export function warmupCosine(step: number, total: number, base: number, final: number, warmup: number, fromZero = true): number {
  if (step < warmup) return fromZero ? (base * (step + 1)) / warmup : base;
  const p = Math.min(1, (step - warmup) / Math.max(1, total - warmup));
  return final + 0.5 * (base - final) * (1 + Math.cos(Math.PI * p));
}

/** DiT^DH: constant for `hold` steps, then linear decay to `final` at `decayEnd`, constant after. */
export function holdLinear(step: number, base: number, final: number, hold: number, decayEnd: number): number {
  if (step < hold) return base;
  if (step >= decayEnd) return final;
  return base + ((final - base) * (step - hold)) / Math.max(1, decayEnd - hold);
}
