/**
 * RoPE kernel (src/kernels/rope.ts) against float64: the forward map vs src/cpu's rope, strided
 * inputs (q/k views into a fused qkv buffer), the transpose as the exact backward for any tables,
 * and the inverse property with rotation tables. Tolerance f32: TOL.f32Elementwise, atol 1e-6, rtol 1e-5
 * (one product and one add of O(1) values per element); f16: TOL.f16, atol 2e-3, rtol 1e-2.
 */
import { describe, expect, it } from 'vitest';
import { rope as ropeRef } from '../../src/cpu/attention.js';
import { ropeInto } from '../../src/kernels/rope.js';
import { tensor, toArray } from '../../src/tensor/creation.js';
import { empty, type Tensor, viewOf } from '../../src/tensor/tensor.js';
import { derived, expectAllclose, TOL } from '../helpers/compare.js';
import { uniformF32 } from '../helpers/random.js';
import { requireFeature, useGpu } from '../helpers/setup.js';

useGpu();

const uniform = (n: number, seed: number) => uniformF32(n, seed);

/** Rotation tables: angle n·θ_i with θ_i = 10000^(−2i/D), repeated on both members of a pair. */
function tables(n: number, d: number): { cos: Float32Array; sin: Float32Array } {
  const cos = new Float32Array(n * d);
  const sin = new Float32Array(n * d);
  for (let p = 0; p < n; p++)
    for (let i = 0; i < d / 2; i++) {
      const a = p * 10000 ** (-(2 * i) / d);
      cos[p * d + 2 * i] = cos[p * d + 2 * i + 1] = Math.cos(a);
      sin[p * d + 2 * i] = sin[p * d + 2 * i + 1] = Math.sin(a);
    }
  return { cos, sin };
}

/** Float64 transpose of the forward map, for arbitrary tables. */
function transposeRef(g: ArrayLike<number>, cos: ArrayLike<number>, sin: ArrayLike<number>, n: number, d: number): Float64Array {
  const out = new Float64Array(g.length);
  for (let base = 0; base < g.length; base += d) {
    const row = (base / d) % n;
    for (let e = 0; e < d; e += 2) {
      const [a, b] = [g[base + e], g[base + e + 1]];
      const t = row * d + e;
      out[base + e] = a * cos[t] + b * sin[t + 1];
      out[base + e + 1] = b * cos[t + 1] - a * sin[t];
    }
  }
  return out;
}

const f64 = (a: ArrayLike<number>) => ({ data: Float64Array.from(a), shape: [] as number[] });

describe('ropeInto', () => {
  it.each([[[2, 3, 16, 8]], [[7, 6]], [[5, 1, 3, 9, 4]], [[2, 65, 12]]])('x %j matches the float64 reference', async (shape) => {
    const [n, d] = shape.slice(-2);
    const size = shape.reduce((a, b) => a * b, 1);
    const xd = uniform(size, 3 + size);
    const { cos, sin } = tables(n, d);
    const [x, c, s] = [tensor(xd, shape), tensor(cos, [n, d]), tensor(sin, [n, d])];
    const y = empty(shape);
    ropeInto(x, c, s, y);
    const want = ropeRef({ ...f64(xd), shape }, { ...f64(cos), shape: [n, d] }, { ...f64(sin), shape: [n, d] });
    expectAllclose(await toArray(y), want.data, TOL.f32Elementwise, { label: 'rope' });
    for (const t of [x, c, s, y]) t.dispose();
  });

  it('reads q and k as strided views of a fused [B, N, 3, H, D] buffer', async () => {
    const [b, n, h, d] = [2, 9, 3, 8];
    const data = uniform(b * n * 3 * h * d, 17);
    const qkv = tensor(data, [b, n, 3, h, d]);
    const { cos, sin } = tables(n, d);
    const [c, s] = [tensor(cos, [n, d]), tensor(sin, [n, d])];
    for (const w of [0, 1]) {
      const view = viewOf(qkv, [b, h, n, d], [n * 3 * h * d, d, 3 * h * d, 1], w * h * d);
      const y = empty([b, h, n, d]);
      ropeInto(view, c, s, y);
      const dense = new Float64Array(b * h * n * d);
      for (let bi = 0; bi < b; bi++)
        for (let hi = 0; hi < h; hi++)
          for (let i = 0; i < n; i++)
            for (let e = 0; e < d; e++) dense[((bi * h + hi) * n + i) * d + e] = data[(((bi * n + i) * 3 + w) * h + hi) * d + e];
      const want = ropeRef({ data: dense, shape: [b, h, n, d] }, { ...f64(cos), shape: [n, d] }, { ...f64(sin), shape: [n, d] });
      expectAllclose(await toArray(y), want.data, TOL.f32Elementwise, { label: w === 0 ? 'q' : 'k' });
      view.dispose();
      y.dispose();
    }
    for (const t of [qkv, c, s]) t.dispose();
  });

  it('inverse undoes the rotation: rope(rope(x), inverse) == x', async () => {
    const shape = [3, 2, 33, 16];
    const xd = uniform(3 * 2 * 33 * 16, 5);
    const { cos, sin } = tables(33, 16);
    const [x, c, s] = [tensor(xd, shape), tensor(cos, [33, 16]), tensor(sin, [33, 16])];
    const y = empty(shape);
    const back = empty(shape);
    ropeInto(x, c, s, y);
    ropeInto(y, c, s, back, true);
    // Two maps in a row: twice the single map's atol.
    expectAllclose(await toArray(back), xd, derived({ atol: 2e-6, rtol: 1e-5 }), { label: 'rope⁻¹(rope(x))' });
    for (const t of [x, c, s, y, back]) t.dispose();
  });

  it('inverse is the exact transpose (the backward) even for tables that differ within a pair', async () => {
    const [n, d] = [7, 10];
    const shape = [2, n, d];
    const xd = uniform(2 * n * d, 8);
    const gd = uniform(2 * n * d, 9);
    const cos = uniform(n * d, 10);
    const sin = uniform(n * d, 11);
    const [x, g, c, s] = [tensor(xd, shape), tensor(gd, shape), tensor(cos, [n, d]), tensor(sin, [n, d])];
    const [y, dx] = [empty(shape), empty(shape)];
    ropeInto(x, c, s, y);
    ropeInto(g, c, s, dx, true);
    const dxGot = await toArray(dx);
    expectAllclose(dxGot, transposeRef(gd, cos, sin, n, d), TOL.f32Elementwise, { label: 'transpose' });
    // Adjoint identity <rope(x), g> = <x, ropeᵀ(g)> on the GPU results.
    const yGot = await toArray(y);
    let lhs = 0;
    let rhs = 0;
    for (let i = 0; i < xd.length; i++) {
      lhs += yGot[i] * gd[i];
      rhs += xd[i] * dxGot[i];
    }
    expect(Math.abs(lhs - rhs)).toBeLessThan(1e-5 * xd.length);
    for (const t of [x, g, c, s, y, dx]) t.dispose();
  });

  it('writes into a strided output view and leaves the rest of the buffer alone', async () => {
    const [b, n, h, d] = [2, 5, 2, 6];
    const xd = uniform(b * h * n * d, 21);
    const { cos, sin } = tables(n, d);
    const [x, c, s] = [tensor(xd, [b, h, n, d]), tensor(cos, [n, d]), tensor(sin, [n, d])];
    const base = tensor(new Float32Array(b * n * h * d * 2).fill(7), [b, n, 2, h, d]);
    const out = viewOf(base, [b, h, n, d], [n * 2 * h * d, d, 2 * h * d, 1], h * d);
    ropeInto(x, c, s, out);
    const want = ropeRef({ ...f64(xd), shape: [b, h, n, d] }, { ...f64(cos), shape: [n, d] }, { ...f64(sin), shape: [n, d] });
    expectAllclose(await toArray(out), want.data, TOL.f32Elementwise, { label: 'strided out' });
    const all = await toArray(base);
    let untouched = 0;
    for (let i = 0; i < all.length; i++) if (Math.floor(i / (h * d)) % 2 === 0 && all[i] === 7) untouched++;
    expect(untouched).toBe(all.length / 2);
    for (const t of [x, c, s, out, base]) t.dispose();
  });

  it('f16 input and output match within atol 2e-3, rtol 1e-2', async ({ skip }) => {
    requireFeature({ skip }, 'shader-f16');
    const shape = [2, 9, 8];
    const xd = uniform(2 * 9 * 8, 31);
    const { cos, sin } = tables(9, 8);
    const x = tensor(xd, shape, { dtype: 'f16' });
    const [c, s] = [tensor(cos, [9, 8]), tensor(sin, [9, 8])];
    const y = empty(shape, 'f16');
    ropeInto(x, c, s, y);
    const xr = await toArray(x);
    const want = ropeRef({ ...f64(xr), shape }, { ...f64(cos), shape: [9, 8] }, { ...f64(sin), shape: [9, 8] });
    expectAllclose(await toArray(y), want.data, TOL.f16, { label: 'f16' });
    for (const t of [x, c, s, y]) t.dispose();
  });

  it('rejects odd head dims and mismatched tables', () => {
    const x = empty([4, 5]);
    const c = empty([4, 5]);
    expect(() => ropeInto(x, c, c, x)).toThrow(/even/);
    const x2 = empty([4, 6]);
    const bad = empty([3, 6]);
    expect(() => ropeInto(x2, bad, bad, x2)).toThrow(/cos must be \[4, 6\]/);
    for (const t of [x, c, x2, bad] as Tensor[]) t.dispose();
  });
});
