/**
 * Fixed tables computed on the host in float64 and uploaded once: 2-D sin-cos position
 * embeddings (MAE / DiT) and EVA-style 2-D rotary tables (spec §3.2, §5.3).
 */

/** 1-D sin-cos embedding of `positions` with `dim` values: [sin(p·ω_k)…, cos(p·ω_k)…], ω_k = 10000^(−k/(dim/2)). */
function sincos1d(dim: number, positions: number[]): Float64Array[] {
  const half = dim / 2;
  return positions.map((p) => {
    const row = new Float64Array(dim);
    for (let k = 0; k < half; k++) {
      const w = 1 / 10000 ** (k / half);
      row[k] = Math.sin(p * w);
      row[half + k] = Math.cos(p * w);
    }
    return row;
  });
}

/**
 * [gridH·gridW, dim] row-major over tokens; the first dim/2 values encode the column index and
 * the second dim/2 the row index (meshgrid(w, h) order of the reference). `extraZeroRows`
 * zero rows are prepended (the decoder's CLS).
 */
export function sincos2dTable(dim: number, gridH: number, gridW = gridH, extraZeroRows = 0): Float32Array {
  if (dim % 4 !== 0) throw new RangeError(`sincos2dTable: dim ${dim} must be divisible by 4`);
  const n = gridH * gridW;
  const out = new Float32Array((n + extraZeroRows) * dim);
  for (let r = 0; r < gridH; r++) {
    const rowEmb = sincos1d(dim / 2, [r])[0];
    for (let c = 0; c < gridW; c++) {
      const colEmb = sincos1d(dim / 2, [c])[0];
      const base = (extraZeroRows + r * gridW + c) * dim;
      out.set(colEmb, base);
      out.set(rowEmb, base + dim / 2);
    }
  }
  return out;
}

/**
 * Rotary cos/sin tables [gridH·gridW, headDim] for interleaved pairs: with dim = headDim/2 and
 * base frequencies f_k = 10000^(−2k/dim) each repeated twice, θ(r, c) = [r·f_rep, c·f_rep].
 */
export function rope2dTables(headDim: number, gridH: number, gridW = gridH, theta = 10000): { cos: Float32Array; sin: Float32Array } {
  if (headDim % 4 !== 0) throw new RangeError(`rope2dTables: head dim ${headDim} must be divisible by 4`);
  const dim = headDim / 2;
  const freqs = new Float64Array(dim);
  for (let k = 0; k < dim / 2; k++) {
    const f = 1 / theta ** ((2 * k) / dim);
    freqs[2 * k] = f;
    freqs[2 * k + 1] = f;
  }
  const n = gridH * gridW;
  const cos = new Float32Array(n * headDim);
  const sin = new Float32Array(n * headDim);
  for (let r = 0; r < gridH; r++) {
    for (let c = 0; c < gridW; c++) {
      const base = (r * gridW + c) * headDim;
      for (let i = 0; i < dim; i++) {
        const a = r * freqs[i];
        const b = c * freqs[i];
        cos[base + i] = Math.cos(a);
        sin[base + i] = Math.sin(a);
        cos[base + dim + i] = Math.cos(b);
        sin[base + dim + i] = Math.sin(b);
      }
    }
  }
  return { cos, sin };
}
