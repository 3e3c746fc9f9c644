/**
 * Array comparison with informative failure messages, for GPU-vs-oracle tests.
 */
import { unravelIndex, ndSize } from './ndarray.js';

export interface CompareOptions {
  atol?: number;
  rtol?: number;
  /** If given, the worst element is reported with its multi-index. */
  shape?: readonly number[];
  /** Prefix for the message (e.g. the op name). */
  label?: string;
}

export interface CompareResult {
  ok: boolean;
  maxAbsErr: number;
  /** max over elements of |a-e| / |e| (elements with e = 0 are skipped; Infinity never arises from them). */
  maxRelErr: number;
  /** Flat index of the element nearest to (or furthest over) its tolerance; -1 if empty. */
  worstIndex: number;
  worstActual: number;
  worstExpected: number;
  message: string;
}

function fmt(v: number): string {
  return Number.isFinite(v) ? v.toPrecision(8) : String(v);
}

/**
 * Elementwise |a - e| <= atol + rtol * |e| (numpy.allclose convention). NaN must appear in the
 * same positions in both; infinities must match exactly.
 */
export function compareArrays(actual: ArrayLike<number>, expected: ArrayLike<number>, opts: CompareOptions = {}): CompareResult {
  const atol = opts.atol ?? 1e-8;
  const rtol = opts.rtol ?? 1e-5;
  const label = opts.label ? `${opts.label}: ` : '';
  const empty = { maxAbsErr: 0, maxRelErr: 0, worstIndex: -1, worstActual: NaN, worstExpected: NaN };
  if (actual.length !== expected.length) {
    return { ok: false, ...empty, message: `${label}length ${actual.length} != expected length ${expected.length}` };
  }
  if (opts.shape && ndSize(opts.shape) !== expected.length) {
    return { ok: false, ...empty, message: `${label}shape [${opts.shape.join(', ')}] does not hold ${expected.length} elements` };
  }
  let maxAbsErr = 0;
  let maxRelErr = 0;
  let worstIndex = -1;
  let worstExcess = -Infinity; // how far the element is over its tolerance (larger = worse)
  let failures = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    let excess: number;
    if (Number.isNaN(a) || Number.isNaN(e)) {
      excess = Number.isNaN(a) && Number.isNaN(e) ? -Infinity : Infinity;
    } else if (!Number.isFinite(a) || !Number.isFinite(e)) {
      excess = a === e ? -Infinity : Infinity;
    } else {
      const err = Math.abs(a - e);
      maxAbsErr = Math.max(maxAbsErr, err);
      if (e !== 0) maxRelErr = Math.max(maxRelErr, err / Math.abs(e));
      excess = err - (atol + rtol * Math.abs(e));
    }
    if (excess > 0) failures++;
    if (worstIndex < 0 || excess > worstExcess) {
      worstExcess = excess;
      worstIndex = i;
    }
  }
  const ok = failures === 0;
  const worstActual = worstIndex >= 0 ? actual[worstIndex] : NaN;
  const worstExpected = worstIndex >= 0 ? expected[worstIndex] : NaN;
  const where = worstIndex < 0 ? '' : opts.shape ? `[${unravelIndex(worstIndex, opts.shape).join(', ')}]` : `flat ${worstIndex}`;
  const message = ok
    ? `${label}ok (${expected.length} elements, max abs err ${fmt(maxAbsErr)}, max rel err ${fmt(maxRelErr)})`
    : `${label}${failures}/${expected.length} elements exceed atol=${atol} rtol=${rtol}; worst at ${where}: ` +
      `actual ${fmt(worstActual)} expected ${fmt(worstExpected)} (abs err ${fmt(Math.abs(worstActual - worstExpected))}); ` +
      `max abs err ${fmt(maxAbsErr)}, max rel err ${fmt(maxRelErr)}`;
  return { ok, maxAbsErr, maxRelErr, worstIndex, worstActual, worstExpected, message };
}

/**
 * max|a - e| / max|e|: the models' tolerance convention (error relative to the tensor's scale,
 * so tiny expected elements do not dominate). Returns 0 if both are all-zero, Infinity if only
 * the expected is all-zero but the actual is not, NaN if the lengths differ or any NaN appears.
 */
export function relErrorByMax(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) return NaN;
  let maxErr = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    // Equal values (including matching infinities) contribute no error.
    const err = actual[i] === expected[i] ? 0 : Math.abs(actual[i] - expected[i]);
    if (Number.isNaN(err)) return NaN;
    maxErr = Math.max(maxErr, err);
    maxRef = Math.max(maxRef, Math.abs(expected[i]));
  }
  if (maxErr === 0) return 0;
  return maxErr / maxRef; // Infinity when expected is all zero
}
