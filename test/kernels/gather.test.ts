/**
 * Embedding / index_select forward and their deterministic scatter-add backwards vs float64
 * references written here (src/cpu's embedding rejects out-of-range ids, and there is no
 * index-add there). Gathers are exact copies; backward sums are f32 sums of a few terms in a
 * fixed order, so the tolerance is 1e-6 relative-by-element plus 1e-6 absolute.
 */
import { describe, expect, it } from 'vitest';
import { runtime } from '../../src/gpu/runtime.js';
import { embeddingBackwardInto, embeddingInto, indexSelectBackwardInto, indexSelectInto } from '../../src/kernels/gather.js';
import { tensor, toArray } from '../../src/tensor/creation.js';
import { empty, viewOf } from '../../src/tensor/tensor.js';
import { expectAllclose, TOL } from '../helpers/compare.js';
import { randomInts, uniformF32 } from '../helpers/random.js';
import { settleGarbage, useGpu } from '../helpers/setup.js';

useGpu();

const pseudoRandom = (n: number, seed: number) => uniformF32(n, seed, 2);

/** ids in [0, v) with repeats; some rows never hit. */
function someIds(n: number, v: number, seed: number): Int32Array {
  const ids = randomInts(n, seed, Math.max(1, v - 2)); // rows v-2, v-1 are never used
  if (n > 3) ids[1] = ids[0] = ids[3]; // guaranteed repeats
  return ids;
}

/** out[i, d] = table[ids[i], d], NaN rows for out-of-range ids. */
function embeddingRef(ids: Int32Array, table: Float32Array, v: number, d: number): Float64Array {
  const out = new Float64Array(ids.length * d);
  ids.forEach((id, i) => {
    for (let k = 0; k < d; k++) out[i * d + k] = id >= 0 && id < v ? table[id * d + k] : NaN;
  });
  return out;
}

/** dtable[v, d] = Σ_{i: ids[i] = v} dout[i, d], out-of-range ids ignored. */
function embeddingBackwardRef(ids: Int32Array, dout: Float32Array, v: number, d: number): Float64Array {
  const out = new Float64Array(v * d);
  ids.forEach((id, i) => {
    if (id < 0 || id >= v) return;
    for (let k = 0; k < d; k++) out[id * d + k] += dout[i * d + k];
  });
  return out;
}

describe('embedding', () => {
  const [V, N, D] = [13, 37, 65];

  it('forward with repeated ids, contiguous table', async () => {
    const tableData = pseudoRandom(V * D, 1);
    const ids = someIds(N, V, 7);
    const table = tensor(tableData, [V, D]);
    const idT = tensor(ids, [N]);
    const out = empty([N, D]);
    embeddingInto(idT, table, out);
    expectAllclose(await toArray(out), embeddingRef(ids, tableData, V, D), TOL.gather, { label: 'embedding', shape: [N, D] });
    for (const t of [table, idT, out]) t.dispose();
  });

  it('forward from a transposed (strided) table into a strided output, ids at an offset', async () => {
    const tableData = pseudoRandom(V * D, 2);
    const ids = someIds(N, V, 11);
    // table stored as [D, V], viewed as [V, D]
    const stored = new Float32Array(V * D);
    for (let v = 0; v < V; v++) for (let k = 0; k < D; k++) stored[k * V + v] = tableData[v * D + k];
    const tStore = tensor(stored, [D, V]);
    const table = viewOf(tStore, [V, D], [1, V], 0);
    const idStore = tensor(Int32Array.from([99, ...ids]), [N + 1]);
    const idT = viewOf(idStore, [N], [1], 1);
    const outStore = empty([D, N]);
    const out = viewOf(outStore, [N, D], [1, N], 0);
    embeddingInto(idT, table, out);
    expectAllclose(await toArray(out), embeddingRef(ids, tableData, V, D), TOL.gather, { label: 'embedding strided', shape: [N, D] });
    for (const t of [tStore, table, idStore, idT, outStore, out]) t.dispose();
  });

  it('out-of-range ids write NaN rows', async () => {
    const tableData = pseudoRandom(V * D, 3);
    const ids = Int32Array.from([0, -1, V, 5, 2 ** 31 - 1, V - 1]);
    const table = tensor(tableData, [V, D]);
    const idT = tensor(ids, [ids.length]);
    const out = empty([ids.length, D]);
    embeddingInto(idT, table, out);
    const got = await toArray(out);
    expectAllclose(got, embeddingRef(ids, tableData, V, D), TOL.gather, { label: 'embedding NaN', shape: [ids.length, D] });
    expect(Number.isNaN(got[D])).toBe(true);
    for (const t of [table, idT, out]) t.dispose();
  });

  it('backward: repeated ids sum, untouched rows are 0, dtable is overwritten, deterministic', async () => {
    const ids = someIds(N, V, 5);
    ids[4] = -3; // ignored
    ids[9] = V + 4; // ignored
    const doutData = pseudoRandom(N * D, 4);
    const idT = tensor(ids, [N]);
    const dout = tensor(doutData, [N, D]);
    const dtable = tensor(new Float32Array(V * D).fill(123), [V, D]); // garbage to be overwritten
    embeddingBackwardInto(idT, dout, dtable);
    const first = await toArray(dtable);
    expectAllclose(first, embeddingBackwardRef(ids, doutData, V, D), TOL.gather, { label: 'embedding backward', shape: [V, D] });
    for (let k = 0; k < D; k++) expect(first[(V - 1) * D + k]).toBe(0);
    embeddingBackwardInto(idT, dout, dtable);
    expect(Array.from(await toArray(dtable))).toEqual(Array.from(first));
    for (const t of [idT, dout, dtable]) t.dispose();
  });

  it('backward with strided dout and dtable, all ids equal, empty ids', async () => {
    const ids = new Int32Array(N).fill(6);
    const doutData = pseudoRandom(N * D, 8);
    const stored = new Float32Array(N * D);
    for (let i = 0; i < N; i++) for (let k = 0; k < D; k++) stored[k * N + i] = doutData[i * D + k];
    const dStore = tensor(stored, [D, N]);
    const dout = viewOf(dStore, [N, D], [1, N], 0);
    const tStore = empty([D, V]);
    const dtable = viewOf(tStore, [V, D], [1, V], 0);
    const idT = tensor(ids, [N]);
    embeddingBackwardInto(idT, dout, dtable);
    expectAllclose(await toArray(dtable), embeddingBackwardRef(ids, doutData, V, D), TOL.gather, {
      label: 'embedding backward strided',
      shape: [V, D],
    });
    // No ids at all: dtable becomes zeros.
    const none = empty([0], 'i32');
    const dnone = empty([0, D]);
    embeddingBackwardInto(none, dnone, dtable);
    expect(Array.from(await toArray(dtable)).every((x) => x === 0)).toBe(true);
    for (const t of [dStore, dout, tStore, dtable, idT, none, dnone]) t.dispose();
  });

  it('releases its scratch buffers', async () => {
    const rt = runtime();
    const idT = tensor(someIds(N, V, 3), [N]);
    const dout = tensor(pseudoRandom(N * D, 3), [N, D]);
    const dtable = empty([V, D]);
    embeddingBackwardInto(idT, dout, dtable);
    await rt.sync();
    await settleGarbage();
    const live = rt.stats().liveBuffers;
    for (let i = 0; i < 3; i++) embeddingBackwardInto(idT, dout, dtable);
    await rt.sync();
    expect(rt.stats().liveBuffers).toBe(live);
    for (const t of [idT, dout, dtable]) t.dispose();
  });
});

describe('index_select', () => {
  const layout = { outer: 3, n: 11, inner: 7 };
  const M = 19;

  function selectRef(x: Float32Array, idx: Int32Array): Float64Array {
    const { outer, n, inner } = layout;
    const out = new Float64Array(outer * idx.length * inner);
    for (let o = 0; o < outer; o++)
      idx.forEach((j, m) => {
        for (let k = 0; k < inner; k++) out[(o * idx.length + m) * inner + k] = j >= 0 && j < n ? x[(o * n + j) * inner + k] : NaN;
      });
    return out;
  }

  function selectBackwardRef(dout: Float32Array, idx: Int32Array): Float64Array {
    const { outer, n, inner } = layout;
    const dx = new Float64Array(outer * n * inner);
    for (let o = 0; o < outer; o++)
      idx.forEach((j, m) => {
        if (j < 0 || j >= n) return;
        for (let k = 0; k < inner; k++) dx[(o * n + j) * inner + k] += dout[(o * idx.length + m) * inner + k];
      });
    return dx;
  }

  it('forward on a middle dim with repeated indices', async () => {
    const xData = pseudoRandom(3 * 11 * 7, 21);
    const idx = someIds(M, layout.n, 13);
    idx[5] = 11; // out of range: NaN
    const x = tensor(xData, [3, 11, 7]);
    const idT = tensor(idx, [M]);
    const out = empty([3, M, 7]);
    indexSelectInto(x, layout, idT, out);
    expectAllclose(await toArray(out), selectRef(xData, idx), TOL.gather, { label: 'index_select', shape: [3, M, 7] });
    for (const t of [x, idT, out]) t.dispose();
  });

  it('backward = index_add into zeros, deterministic', async () => {
    const idx = someIds(M, layout.n, 17);
    idx[2] = -1; // ignored
    const gData = pseudoRandom(3 * M * 7, 22);
    const g = tensor(gData, [3, M, 7]);
    const idT = tensor(idx, [M]);
    const dx = tensor(new Float32Array(3 * 11 * 7).fill(-5), [3, 11, 7]);
    indexSelectBackwardInto(g, layout, idT, dx);
    const first = await toArray(dx);
    expectAllclose(first, selectBackwardRef(gData, idx), TOL.gather, { label: 'index_select backward', shape: [3, 11, 7] });
    indexSelectBackwardInto(g, layout, idT, dx);
    expect(Array.from(await toArray(dx))).toEqual(Array.from(first));
    for (const t of [g, idT, dx]) t.dispose();
  });

  it('dim 0 (outer = 1) and last dim (inner = 1), u32 indices', async () => {
    for (const l of [
      { outer: 1, n: 9, inner: 5 },
      { outer: 4, n: 9, inner: 1 },
    ]) {
      const xData = pseudoRandom(l.outer * l.n * l.inner, 31);
      const idx = Uint32Array.from([8, 0, 3, 3, 8, 1]);
      const x = tensor(xData, [l.outer * l.n * l.inner]);
      const idT = tensor(idx, [idx.length]);
      const out = empty([l.outer, idx.length, l.inner]);
      indexSelectInto(x, l, idT, out);
      const got = await toArray(out);
      const dx = empty([l.outer, l.n, l.inner]);
      indexSelectBackwardInto(out, l, idT, dx);
      const gotDx = await toArray(dx);
      const want = new Float64Array(got.length);
      const wantDx = new Float64Array(gotDx.length);
      for (let o = 0; o < l.outer; o++)
        idx.forEach((j, m) => {
          for (let k = 0; k < l.inner; k++) {
            const v = xData[(o * l.n + j) * l.inner + k];
            want[(o * idx.length + m) * l.inner + k] = v;
            wantDx[(o * l.n + j) * l.inner + k] += v;
          }
        });
      expectAllclose(got, want, TOL.gather, { label: `index_select ${JSON.stringify(l)}` });
      expectAllclose(gotDx, wantDx, TOL.gather, { label: `index_select backward ${JSON.stringify(l)}` });
      for (const t of [x, idT, out, dx]) t.dispose();
    }
  });

  it('rejects mismatched layouts', () => {
    const x = empty([3, 11, 7]);
    const idT = tensor(new Int32Array([1]), [1]);
    const out = empty([3, 2, 7]);
    expect(() => indexSelectInto(x, layout, idT, out)).toThrow(/out has 42 elements/);
    const out1 = empty([3, 1, 7]);
    expect(() => indexSelectInto(x, { outer: 3, n: 10, inner: 7 }, idT, out1)).toThrow(/x has 231 elements/);
    for (const t of [x, idT, out, out1]) t.dispose();
  });
});
