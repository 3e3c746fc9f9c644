/**
 * What a benchmark case is, independent of the engine that runs it: the operation with its
 * shapes, the inputs (seeded, the same Float32Arrays for every engine), the work per call (FLOPs
 * or bytes) and the float64 reference that checks a sample of the output.
 */

/** The operations engines implement. Shapes are the logical ones; `trans*` say how an operand is stored. */
export type Op =
  /** out = x over n elements: the elementwise-copy bandwidth, the limit of memory-bound cases. */
  | { kind: 'copy'; n: number }
  /** out[M, N] = A·B; A stored [M, K] (or [K, M] when transA), B stored [K, N] (or [N, K] when transB). */
  | { kind: 'matmul'; M: number; K: number; N: number; transA?: boolean; transB?: boolean }
  /** Fused attention over [B, H, N, D]; `backward` adds the gradients for an upstream gradient g (checked: dV). */
  | { kind: 'attention'; B: number; H: number; N: number; D: number; backward: boolean }
  /** Row ops over [T, W]: layerNorm (weight, bias), rmsNorm (weight), softmax. */
  | { kind: 'layerNorm' | 'rmsNorm' | 'softmax'; T: number; W: number }
  /** One AdamW step (weight decay 0, so Adam in engines without AdamW) over P parameters, state m and v. */
  | { kind: 'adamw'; P: number }
  /** One training step of a pre-LN transformer block (loss = mean(y²), AdamW lr 1e-4); checked: the first step's loss. */
  | { kind: 'block-train'; B: number; N: number; D: number; H: number }
  /** The DiT^DH training step of bench/train-step.ts (ours only; eager, and compiled where the engine has it). */
  | { kind: 'ditdh-train' };

export type Unit = 'GFLOP/s' | 'GB/s' | 'ms';

export interface Input {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** A sample of the expected output: flat indices into the checked output and their float64 values. */
export interface Expected {
  /** Which output is checked (e.g. 'out', 'dV', 'loss', 'param'). */
  output: string;
  indices: number[];
  values: Float64Array;
  /** Pass when max |actual − expected| ≤ tol · max(1, max |expected|) over the sample. */
  tol: number;
}

export interface BenchCase {
  name: string;
  suite: string;
  /** Human-readable shape, e.g. '1024×1024×1024'. */
  shape: string;
  op: Op;
  unit: Unit;
  /** FLOPs (GFLOP/s cases) or bytes (GB/s cases) per call; unused for 'ms' cases. */
  work: number;
  /** Which known limit the rate is a fraction of: the adapter's fp32 peak, or the copy bandwidth. */
  limit: 'fp32' | 'copy' | null;
  /** In the --quick subset. */
  quick: boolean;
  inputs: () => Input[];
  /** The float64 reference on a sample of the output (null: no reference; said so in the results). */
  expected: ((inputs: Input[]) => Expected) | null;
}

/** Mulberry32 + Box–Muller: seeded normal samples, identical in every engine's inputs. */
export function seededNormal(n: number, seed: number, std = 1): Float32Array {
  let s = seed >>> 0 || 1;
  const u = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(u()));
    const a = 2 * Math.PI * u();
    out[i] = std * r * Math.cos(a);
    if (i + 1 < n) out[i + 1] = std * r * Math.sin(a);
  }
  return out;
}

export const input = (name: string, shape: number[], seed: number, std = 1): Input => ({
  name,
  shape,
  data: seededNormal(
    shape.reduce((a, b) => a * b, 1),
    seed,
    std,
  ),
});

/** `count` row indices spread over [0, rows), always including the first and the last. */
export function sampleRows(rows: number, count: number): number[] {
  if (rows <= count) return Array.from({ length: rows }, (_, i) => i);
  return Array.from({ length: count }, (_, i) => Math.round((i * (rows - 1)) / (count - 1)));
}
