/**
 * float64 oracles for the pointwise op table (src/core/pointwise.ts), one per entry: the value
 * and the interval a test samples (away from poles; kinks are nudged by the test). The Record
 * type makes a table entry without an oracle a type error.
 */
import type { UnaryOp } from '../core/pointwise.js';
import { geluScalar, geluTanhScalar, sigmoidScalar } from './elementwise.js';

export interface PointwiseOracle {
  f(x: number): number;
  /** Where the test samples inputs. */
  domain: readonly [number, number];
  /** Points where the derivative jumps (finite differences there are meaningless). */
  kinks?: readonly number[];
}

export const UNARY_ORACLES: Record<UnaryOp, PointwiseOracle> = {
  neg: { f: (v) => -v, domain: [-2, 2] },
  exp: { f: Math.exp, domain: [-2, 2] },
  log: { f: Math.log, domain: [0.2, 3] },
  sqrt: { f: Math.sqrt, domain: [0.2, 3] },
  rsqrt: { f: (v) => 1 / Math.sqrt(v), domain: [0.2, 3] },
  abs: { f: Math.abs, domain: [-2, 2], kinks: [0] },
  sin: { f: Math.sin, domain: [-3, 3] },
  cos: { f: Math.cos, domain: [-3, 3] },
  tanh: { f: Math.tanh, domain: [-3, 3] },
  sigmoid: { f: sigmoidScalar, domain: [-5, 5] },
  relu: { f: (v) => (v > 0 || Number.isNaN(v) ? v : 0), domain: [-2, 2], kinks: [0] },
  silu: { f: (v) => v * sigmoidScalar(v), domain: [-4, 4] },
  gelu: { f: geluScalar, domain: [-4, 4] },
  gelu_tanh: { f: geluTanhScalar, domain: [-4, 4] },
};
