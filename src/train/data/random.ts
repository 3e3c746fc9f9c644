/**
 * Seeded randomness of the data pipeline, all pure functions of their arguments so that a
 * restored loader (seed, epoch, position) replays exactly: a 32-bit integer hash, a small
 * counter-based generator, per-epoch permutations and class-stratified picks.
 */

/** Mixes 32-bit words into one (murmur3's finaliser after each word). */
export function hash32(...words: number[]): number {
  let h = 0x9e3779b9;
  for (const w of words) {
    h = Math.imul(h ^ (w >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** A splitmix32-style generator; `next()` gives a uniform float in [0, 1) with 32 random bits. */
export class Rng {
  private state: number;
  constructor(...seedWords: number[]) {
    this.state = hash32(...seedWords);
  }
  nextU32(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
    z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
    return (z ^ (z >>> 15)) >>> 0;
  }
  /** Uniform integer in [0, n) (n < 2^32; rejection keeps it unbiased). */
  below(n: number): number {
    const limit = Math.floor(0x100000000 / n) * n;
    let v = this.nextU32();
    while (v >= limit) v = this.nextU32();
    return v % n;
  }
}

/** Stream tags keep the uses of one seed independent. */
export const STREAM = { epochOrder: 1, flip: 2, heldOut: 3, subset: 4 } as const;

/** Fisher–Yates permutation of [0, n). */
export function permutation(n: number, rng: Rng): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.below(i + 1);
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

export function epochPermutation(n: number, seed: number, epoch: number): Int32Array {
  return permutation(n, new Rng(seed, STREAM.epochOrder, epoch));
}

/** Whether dataset image `index` is mirrored in `epoch`: a fair coin per (seed, epoch, index). */
export function flipOf(seed: number, epoch: number, index: number): boolean {
  return (hash32(seed, STREAM.flip, epoch, index) & 0x80000000) !== 0;
}

/**
 * Picks `count` of the given items, class-stratified: class k gets count·n_k/N rounded by largest
 * remainder (ties to the lower class), its members chosen by a seeded shuffle. Returns the picked
 * items (ascending) and the rest (ascending).
 */
export function stratifiedPick(items: Int32Array, labels: Int32Array, count: number, rng: Rng): { picked: Int32Array; rest: Int32Array } {
  const n = items.length;
  if (count >= n) return { picked: items.slice(), rest: new Int32Array(0) };
  if (count <= 0) return { picked: new Int32Array(0), rest: items.slice() };
  const byClass = new Map<number, number[]>();
  for (const it of items) {
    const k = labels[it];
    const list = byClass.get(k);
    if (list) list.push(it);
    else byClass.set(k, [it]);
  }
  const keys = [...byClass.keys()].sort((a, b) => a - b);
  const quota = new Map<number, number>();
  let given = 0;
  const remainders: { k: number; r: number }[] = [];
  for (const k of keys) {
    const exact = (count * byClass.get(k)!.length) / n;
    quota.set(k, Math.floor(exact));
    given += Math.floor(exact);
    remainders.push({ k, r: exact - Math.floor(exact) });
  }
  remainders.sort((a, b) => b.r - a.r || a.k - b.k);
  for (let i = 0; given < count; i++, given++) quota.set(remainders[i].k, quota.get(remainders[i].k)! + 1);
  const picked: number[] = [];
  const rest: number[] = [];
  for (const k of keys) {
    const list = byClass.get(k)!;
    const order = permutation(list.length, rng);
    const q = quota.get(k)!;
    order.forEach((o, j) => (j < q ? picked : rest).push(list[o]));
  }
  const asc = (a: number, b: number) => a - b;
  return { picked: Int32Array.from(picked.sort(asc)), rest: Int32Array.from(rest.sort(asc)) };
}
