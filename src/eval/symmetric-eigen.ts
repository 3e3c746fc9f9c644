/**
 * Eigendecomposition of a real symmetric matrix in float64: Householder reduction to a
 * tridiagonal matrix, then the implicit QL iteration with Wilkinson-style shifts (the classic
 * tred2/tql2 pair). Written for flat row-major Float64Arrays so every inner loop runs along a
 * contiguous row: ml-matrix's EigenvalueDecomposition (same algorithm, element accessors,
 * column-strided loops) took 2.7 s at 512×512 on this machine, which is about 3 minutes at 2048
 * — too slow for an FID that needs two of them.
 *
 * Row-major trick: the reduction updates the whole symmetric matrix (not one triangle), so a
 * column of the lower triangle can be read as a row; eigenvectors are kept as rows (the
 * transpose of the usual Z), so each QL rotation mixes two contiguous rows.
 */

export interface SymmetricEigen {
  /** Eigenvalues, ascending. */
  values: Float64Array;
  /** Row i is the unit eigenvector of values[i] (n × n, row-major); absent when not requested. */
  vectors?: Float64Array;
}

/** `a` is n × n symmetric, row-major; it is not modified. */
export function symmetricEigen(a: Float64Array, n: number, wantVectors: boolean): SymmetricEigen {
  if (a.length !== n * n) throw new Error(`symmetricEigen: expected ${n * n} values for ${n}×${n}, got ${a.length}`);
  const m = Float64Array.from(a);
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  tridiagonalize(m, n, d, e, wantVectors);
  let z: Float64Array | undefined;
  if (wantVectors) {
    // m now holds Q (columns are the basis); keep its transpose so rotations act on rows.
    z = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) z[j * n + i] = m[i * n + j];
  }
  tridiagonalQl(d, e, n, z);
  // Sort ascending (selection sort on values, swapping vector rows along).
  for (let i = 0; i < n - 1; i++) {
    let k = i;
    for (let j = i + 1; j < n; j++) if (d[j] < d[k]) k = j;
    if (k !== i) {
      const t = d[i];
      d[i] = d[k];
      d[k] = t;
      if (z) {
        const rowI = z.slice(i * n, i * n + n);
        z.copyWithin(i * n, k * n, k * n + n);
        z.set(rowI, k * n);
      }
    }
  }
  return z ? { values: d, vectors: z } : { values: d };
}

/** Householder reduction: d gets the diagonal, e[1..n-1] the sub-diagonal; m becomes Q if wanted. */
function tridiagonalize(m: Float64Array, n: number, d: Float64Array, e: Float64Array, wantVectors: boolean): void {
  for (let i = n - 1; i > 0; i--) {
    const l = i - 1;
    const ri = i * n;
    let h = 0;
    if (l > 0) {
      let scale = 0;
      for (let k = 0; k <= l; k++) scale += Math.abs(m[ri + k]);
      if (scale === 0) {
        e[i] = m[ri + l];
      } else {
        for (let k = 0; k <= l; k++) {
          m[ri + k] /= scale;
          h += m[ri + k] * m[ri + k];
        }
        let f = m[ri + l];
        const g = f >= 0 ? -Math.sqrt(h) : Math.sqrt(h);
        e[i] = scale * g;
        h -= f * g;
        m[ri + l] = f - g;
        // Row i (columns 0..l) is now the Householder vector u; p = A·u / h goes into e[0..l].
        f = 0;
        for (let j = 0; j <= l; j++) {
          if (wantVectors) m[j * n + i] = m[ri + j] / h;
          const rj = j * n;
          let s = 0;
          for (let k = 0; k <= l; k++) s += m[rj + k] * m[ri + k];
          e[j] = s / h;
          f += e[j] * m[ri + j];
        }
        const hh = f / (h + h);
        for (let j = 0; j <= l; j++) e[j] -= hh * m[ri + j];
        // A ← A − u·qᵀ − q·uᵀ on the full leading (l+1)×(l+1) block, keeping it symmetric.
        for (let j = 0; j <= l; j++) {
          const fj = m[ri + j];
          const gj = e[j];
          const rj = j * n;
          for (let k = 0; k <= l; k++) m[rj + k] -= fj * e[k] + gj * m[ri + k];
        }
      }
    } else {
      e[i] = m[ri + l];
    }
    d[i] = h;
  }
  d[0] = 0;
  e[0] = 0;
  if (!wantVectors) {
    for (let i = 0; i < n; i++) d[i] = m[i * n + i];
    return;
  }
  // Accumulate the transformations: Q is built in place, leading block first.
  const w = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    if (d[i] !== 0) {
      // w = u_iᵀ · Q_block (u_i is row i, columns < i), then Q_block −= (column i of m) ⊗ w.
      w.fill(0, 0, i);
      for (let k = 0; k < i; k++) {
        const uk = m[ri + k];
        if (uk === 0) continue;
        const rk = k * n;
        for (let j = 0; j < i; j++) w[j] += uk * m[rk + j];
      }
      for (let k = 0; k < i; k++) {
        const vk = m[k * n + i];
        if (vk === 0) continue;
        const rk = k * n;
        for (let j = 0; j < i; j++) m[rk + j] -= vk * w[j];
      }
    }
    d[i] = m[ri + i];
    m[ri + i] = 1;
    for (let j = 0; j < i; j++) {
      m[j * n + i] = 0;
      m[ri + j] = 0;
    }
  }
}

/** Implicit QL on the tridiagonal (d, e); rotations applied to the rows of zt when given. */
function tridiagonalQl(d: Float64Array, e: Float64Array, n: number, zt: Float64Array | undefined): void {
  for (let i = 1; i < n; i++) e[i - 1] = e[i];
  e[n - 1] = 0;
  const eps = Number.EPSILON;
  for (let l = 0; l < n; l++) {
    let iterations = 0;
    let m: number;
    do {
      for (m = l; m < n - 1; m++) {
        const dd = Math.abs(d[m]) + Math.abs(d[m + 1]);
        if (Math.abs(e[m]) <= eps * dd) break;
      }
      if (m !== l) {
        if (iterations++ === 100) throw new Error(`symmetricEigen: no convergence for eigenvalue ${l} after 100 QL iterations`);
        let g = (d[l + 1] - d[l]) / (2 * e[l]);
        let r = Math.hypot(g, 1);
        g = d[m] - d[l] + e[l] / (g + (g >= 0 ? Math.abs(r) : -Math.abs(r)));
        let s = 1;
        let c = 1;
        let p = 0;
        let i: number;
        let underflow = false;
        for (i = m - 1; i >= l; i--) {
          let f = s * e[i];
          const b = c * e[i];
          r = Math.hypot(f, g);
          e[i + 1] = r;
          if (r === 0) {
            d[i + 1] -= p;
            e[m] = 0;
            underflow = true;
            break;
          }
          s = f / r;
          c = g / r;
          g = d[i + 1] - p;
          r = (d[i] - g) * s + 2 * c * b;
          p = s * r;
          d[i + 1] = g + p;
          g = c * r - b;
          if (zt) {
            const a0 = i * n;
            const a1 = (i + 1) * n;
            for (let k = 0; k < n; k++) {
              f = zt[a1 + k];
              const zi = zt[a0 + k];
              zt[a1 + k] = s * zi + c * f;
              zt[a0 + k] = c * zi - s * f;
            }
          }
        }
        if (underflow) continue;
        d[l] -= p;
        e[l] = g;
        e[m] = 0;
      }
    } while (m !== l);
  }
}
