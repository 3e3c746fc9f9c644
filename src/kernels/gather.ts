/**
 * Row gathers and their deterministic scatter-add backwards: embedding lookup and index_select.
 *
 * Both are one op on a [outer, n, inner] source: out[o, m, k] = src[o, idx[m], k] (embedding is
 * outer = 1, n = V, inner = D). Indices are i32 (or u32) in a contiguous [M] view. An index
 * outside [0, n) writes NaN in the forward (callers validate host-side ids; NaN makes a bad id
 * impossible to miss) and contributes nothing in the backward.
 *
 * Backward without float atomics, as a counting sort that needs no sort:
 *   1. segments: one thread per row j of the source: start_j = #{m : 0 ≤ idx[m] < j},
 *      count_j = #{m : idx[m] = j}; then it writes the m with idx[m] = j, in increasing order,
 *      to perm[start_j ..]. Work O(n·M) index reads (two passes over idx per thread), no D factor.
 *   2. reduce: one thread per (o, j, k): dsrc[o, j, k] = Σ_{q < count_j} dout[o, perm[start_j + q], k],
 *      summed in increasing m, so the result is bitwise reproducible. Work O(outer·(n + M)·inner).
 * Against the naive "thread per (j, k) scans all M" (O(n·M·inner): 295 M steps for the DiT class
 * table 1001×1152 at batch 256) this is ~1.5 M steps; fine up to n·M of a few times 10⁷.
 * dsrc is overwritten (rows no index hits become 0), not accumulated.
 */
import { runtime } from '../gpu/runtime.js';
import { enables, FLAT_INDEX, grid1d, WG } from './common.js';
import { uniforms } from './uniforms.js';
import { isContiguous, type View } from './view.js';

export interface RowLayout {
  outer: number;
  n: number;
  inner: number;
}

/** A value operand as [outer, rows, inner] strides (elements) and an offset. */
interface Strided3 {
  view: View;
  strides: [number, number, number];
}

const NAN_F32 = 0x7fc00000;
const NAN_F16X2 = 0x7e007e00;

function checkIndex(idx: View, op: string): number {
  if (idx.dtype !== 'i32' && idx.dtype !== 'u32') throw new TypeError(`${op}: indices must be i32 or u32, got ${idx.dtype}`);
  if (idx.shape.length !== 1 || !isContiguous(idx))
    throw new RangeError(`${op}: indices must be a contiguous 1-D view, got shape [${idx.shape.join(', ')}]`);
  return idx.shape[0];
}

function checkValue(v: View, op: string, name: string): void {
  if (v.dtype !== 'f32' && v.dtype !== 'f16') throw new TypeError(`${op}: ${name} must be f32 or f16, got ${v.dtype}`);
}

function checkLayout(l: RowLayout, op: string): void {
  for (const k of ['outer', 'n', 'inner'] as const) {
    if (!Number.isInteger(l[k]) || l[k] < 0) throw new RangeError(`${op}: layout.${k} must be a non-negative integer, got ${l[k]}`);
  }
}

/** Contiguous view of `size` elements interpreted as [a, b, c]. */
function contiguous3(v: View, a: number, b: number, c: number, op: string, name: string): Strided3 {
  const size = v.shape.reduce((x, y) => x * y, 1);
  if (size !== a * b * c) throw new RangeError(`${op}: ${name} has ${size} elements, expected ${a}·${b}·${c} = ${a * b * c}`);
  if (!isContiguous(v)) throw new RangeError(`${op}: ${name} must be contiguous`);
  return { view: v, strides: [b * c, c, 1] };
}

/** A 2-D [rows, cols] view as [1, rows, cols] strides. */
function rows2(v: View, rows: number, cols: number, op: string, name: string): Strided3 {
  if (v.shape.length !== 2 || v.shape[0] !== rows || v.shape[1] !== cols) {
    throw new RangeError(`${op}: ${name} must be [${rows}, ${cols}], got [${v.shape.join(', ')}]`);
  }
  return { view: v, strides: [0, v.strides[0], v.strides[1]] };
}

// ---- forward gather ----

/**
 * total = outer·M·inner outputs; src and out as [outer, rows, inner] strides and an offset; the
 * index view's offset; `nan_bits`: NaN in the output's type (f16: two halves in one word).
 */
const GATHER_UNIFORMS = uniforms({
  total: 'u32',
  M: 'u32',
  inner: 'u32',
  n: 'u32',
  src_stride: ['u32', 3],
  src_offset: 'u32',
  out_stride: ['u32', 3],
  out_offset: 'u32',
  idx_offset: 'u32',
  nan_bits: 'u32',
});
const SEGMENT_UNIFORMS = uniforms({ n: 'u32', M: 'u32', idx_offset: 'u32' });
const INDEX_ADD_UNIFORMS = uniforms({
  total: 'u32',
  n: 'u32',
  inner: 'u32',
  dout_stride: ['u32', 3],
  dout_offset: 'u32',
  dsrc_stride: ['u32', 3],
  dsrc_offset: 'u32',
});

function gather(src: Strided3, idx: View, out: Strided3, l: RowLayout, m: number): void {
  const total = l.outer * m * l.inner;
  if (total === 0) return;
  if (total > 0xffffffff) throw new RangeError(`gather: ${total} outputs exceed the u32 index range`);
  const sT = src.view.dtype;
  const oT = out.view.dtype;
  const params = GATHER_UNIFORMS.pack({
    total,
    M: m,
    inner: l.inner,
    n: l.n,
    src_stride: src.strides,
    src_offset: src.view.offset,
    out_stride: out.strides,
    out_offset: out.view.offset,
    idx_offset: idx.offset,
    nan_bits: oT === 'f16' ? NAN_F16X2 : NAN_F32,
  });
  const nan = oT === 'f16' ? 'bitcast<vec2<f16>>(params.nan_bits).x' : 'bitcast<f32>(params.nan_bits)';
  runtime().dispatch(
    {
      key: `gather|${idx.dtype}|${sT}>${oT}`,
      bindings: ['read', 'read', 'write', 'uniform'],
      wgsl: () => `${enables([sT, oT])}@group(0) @binding(0) var<storage, read> src_buf: array<${sT}>;
@group(0) @binding(1) var<storage, read> idx_buf: array<${idx.dtype}>;
@group(0) @binding(2) var<storage, read_write> out_buf: array<${oT}>;
${GATHER_UNIFORMS.wgsl(3)}
const WG = ${WG}u;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${FLAT_INDEX};
  if (i >= params.total) { return; }
  let M = params.M;
  let inner = params.inner;
  let k = i % inner;
  let t = i / inner;
  let m = t % M;
  let o = t / M;
  let row = i32(idx_buf[params.idx_offset + m]);
  let dst = params.out_offset + o * params.out_stride_0 + m * params.out_stride_1 + k * params.out_stride_2;
  if (row < 0 || row >= i32(params.n)) {
    out_buf[dst] = ${nan};
    return;
  }
  out_buf[dst] = ${oT}(src_buf[params.src_offset + o * params.src_stride_0 + u32(row) * params.src_stride_1 + k * params.src_stride_2]);
}`,
    },
    [src.view.buffer, idx.buffer, out.view.buffer],
    grid1d(total),
    params,
  );
}

// ---- backward: segments, then a deterministic segmented sum ----

function scatterAdd(dout: Strided3, idx: View, dsrc: Strided3, l: RowLayout, m: number): void {
  const total = l.outer * l.n * l.inner;
  if (total === 0) return;
  if (total > 0xffffffff) throw new RangeError(`index-add: ${total} outputs exceed the u32 index range`);
  const rt = runtime();
  // [start_j, count_j] for every row j, then perm (M entries).
  const scratch = rt.allocate((2 * l.n + Math.max(m, 1)) * 4, 'index-add-segments');
  rt.dispatch(
    {
      key: `index-segments|${idx.dtype}`,
      bindings: ['read', 'write', 'uniform'],
      wgsl: () => `@group(0) @binding(0) var<storage, read> idx_buf: array<${idx.dtype}>;
@group(0) @binding(1) var<storage, read_write> seg: array<u32>;
${SEGMENT_UNIFORMS.wgsl(2)}
const WG = ${WG}u;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let j = ${FLAT_INDEX};
  let n = params.n;
  if (j >= n) { return; }
  let M = params.M;
  let base = params.idx_offset;
  let row = i32(j);
  var start = 0u;
  var count = 0u;
  for (var q = 0u; q < M; q++) {
    let v = i32(idx_buf[base + q]);
    start += select(0u, 1u, v >= 0 && v < row);
    count += select(0u, 1u, v == row);
  }
  seg[2u * j] = start;
  seg[2u * j + 1u] = count;
  if (count == 0u) { return; }
  var w = 2u * n + start;
  for (var q = 0u; q < M; q++) {
    if (i32(idx_buf[base + q]) == row) {
      seg[w] = q;
      w++;
    }
  }
}`,
    },
    [idx.buffer, scratch],
    grid1d(l.n),
    SEGMENT_UNIFORMS.pack({ n: l.n, M: m, idx_offset: idx.offset }),
  );
  const gT = dout.view.dtype;
  const oT = dsrc.view.dtype;
  rt.dispatch(
    {
      key: `index-add|${gT}>${oT}`,
      bindings: ['read', 'read', 'write', 'uniform'],
      wgsl: () => `${enables([gT, oT])}@group(0) @binding(0) var<storage, read> g_buf: array<${gT}>;
@group(0) @binding(1) var<storage, read> seg: array<u32>;
@group(0) @binding(2) var<storage, read_write> out_buf: array<${oT}>;
${INDEX_ADD_UNIFORMS.wgsl(3)}
const WG = ${WG}u;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${FLAT_INDEX};
  if (i >= params.total) { return; }
  let n = params.n;
  let inner = params.inner;
  let k = i % inner;
  let t = i / inner;
  let j = t % n;
  let o = t / n;
  let start = seg[2u * j];
  let count = seg[2u * j + 1u];
  let src = params.dout_offset + o * params.dout_stride_0 + k * params.dout_stride_2;
  var acc = 0.0;
  for (var q = 0u; q < count; q++) {
    acc += f32(g_buf[src + seg[2u * n + start + q] * params.dout_stride_1]);
  }
  out_buf[params.dsrc_offset + o * params.dsrc_stride_0 + j * params.dsrc_stride_1 + k * params.dsrc_stride_2] = ${oT}(acc);
}`,
    },
    [dout.view.buffer, scratch, dsrc.view.buffer],
    grid1d(total),
    INDEX_ADD_UNIFORMS.pack({
      total,
      n: l.n,
      inner: l.inner,
      dout_stride: dout.strides,
      dout_offset: dout.view.offset,
      dsrc_stride: dsrc.strides,
      dsrc_offset: dsrc.view.offset,
    }),
  );
  // Safe: the pool reuses a released buffer only after the batch that reads it is submitted.
  rt.release(scratch);
}

// ---- public API ----

/**
 * out[i, :] = table[ids[i], :]. ids: i32 (or u32) contiguous [N]; table [V, D] with any strides;
 * out [N, D] with any strides. Out-of-range ids write NaN rows (the autograd layer validates ids
 * on the host).
 */
export function embeddingInto(ids: View, table: View, out: View): void {
  const op = 'embedding';
  const n = checkIndex(ids, op);
  checkValue(table, op, 'table');
  checkValue(out, op, 'out');
  if (table.shape.length !== 2) throw new RangeError(`${op}: table must be [V, D], got [${table.shape.join(', ')}]`);
  const [v, d] = table.shape;
  gather(rows2(table, v, d, op, 'table'), ids, rows2(out, n, d, op, 'out'), { outer: 1, n: v, inner: d }, n);
}

/**
 * dtable[v, :] = Σ_{i : ids[i] = v} dout[i, :] (overwritten, deterministic: summed in increasing
 * i, no atomics). ids contiguous [N]; dout [N, D], dtable [V, D], any strides. Out-of-range ids
 * are ignored. Two dispatches; cost in the file comment.
 */
export function embeddingBackwardInto(ids: View, dout: View, dtable: View): void {
  const op = 'embeddingBackward';
  const n = checkIndex(ids, op);
  checkValue(dout, op, 'dout');
  checkValue(dtable, op, 'dtable');
  if (dtable.shape.length !== 2) throw new RangeError(`${op}: dtable must be [V, D], got [${dtable.shape.join(', ')}]`);
  const [v, d] = dtable.shape;
  scatterAdd(rows2(dout, n, d, op, 'dout'), ids, rows2(dtable, v, d, op, 'dtable'), { outer: 1, n: v, inner: d }, n);
}

/**
 * out = x.index_select(dim, idx) for a contiguous x viewed as [outer, n, inner] (n = x.shape[dim]);
 * out is contiguous [outer, M, inner] (any shape with that many elements), M = idx length.
 * Out-of-range indices write NaN.
 */
export function indexSelectInto(x: View, layout: RowLayout, idx: View, out: View): void {
  const op = 'indexSelect';
  checkLayout(layout, op);
  const m = checkIndex(idx, op);
  checkValue(x, op, 'x');
  checkValue(out, op, 'out');
  const { outer, n, inner } = layout;
  gather(contiguous3(x, outer, n, inner, op, 'x'), idx, contiguous3(out, outer, m, inner, op, 'out'), layout, m);
}

/**
 * Backward of indexSelectInto: dx = zeros([outer, n, inner]).index_add_(1, idx, dout),
 * deterministic (summed in increasing position of idx). dout contiguous [outer, M, inner];
 * dx contiguous [outer, n, inner], overwritten. Out-of-range indices are ignored.
 */
export function indexSelectBackwardInto(dout: View, layout: RowLayout, idx: View, dx: View): void {
  const op = 'indexSelectBackward';
  checkLayout(layout, op);
  const m = checkIndex(idx, op);
  checkValue(dout, op, 'dout');
  checkValue(dx, op, 'dx');
  const { outer, n, inner } = layout;
  scatterAdd(contiguous3(dout, outer, m, inner, op, 'dout'), idx, contiguous3(dx, outer, n, inner, op, 'dx'), layout, m);
}
