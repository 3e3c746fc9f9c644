/**
 * Reductions over one axis of a strided view, x seen as [outer, R, inner]. The workgroup
 * reductions of the "rows" strategy come from row-reduce.ts (shared with softmax.ts, norm.ts).
 *
 * Strategy (chosen per call, part of the cache key):
 *  - "rows": one workgroup per output, its WG threads stride through R and combine by a
 *    workgroup reduction. Used when R > 16 and the reduced axis is the faster one in memory
 *    (inner == 1, or |sR| < |sInner|): the threads of a workgroup then read neighbouring
 *    elements and no output's R is walked by a single thread.
 *  - "columns": one thread per output walks R serially. Used when R ≤ 16 (a workgroup per
 *    output would idle) or when outputs are the faster axis (inner > 1 and |sInner| ≤ |sR|):
 *    neighbouring threads read neighbouring outputs, no barriers.
 *  - Long R is split into chunks (rows: ≤ 16 elements per thread, ≤ 16·WG per chunk; columns:
 *    ≤ 64 per thread). Chunk partials [outer, chunks, inner] (f32, plus i32 indices for
 *    argmax/argmin) are reduced again by the same code until one chunk remains. That makes full
 *    reductions of large tensors parallel, and keeps every sum a short serial run followed by
 *    tree combines (pairwise-like error growth, no 10^6-long serial loop).
 * Variance is two-pass (mean, then the sum of squared deviations from it), like the float64
 * reference.
 *
 * Numerics on fast-math drivers: lavapipe folds `x != x` to false and 0·inf to 0, so NaN is
 * detected from the bit pattern and produced from one, never by arithmetic.
 */
import type { PooledBuffer } from '../gpu/buffer-pool.js';
import { runtime } from '../gpu/runtime.js';
import type { DType } from '../core/dtype.js';
import { sizeOf } from '../core/shape.js';
import { grid1d } from './common.js';
import { COLUMNS_WG_MAX_CHUNKS, dispatchColumnsInWorkgroup } from './reduce-columns.js';
import type { ColumnsReduceFuse } from './reduce-groups.js';

const isArgCombine = (c: Combine) => c === 'argmax' || c === 'argmin';

/** Outputs up to which a few-chunk column reduction runs in one dispatch. */
const COLUMNS_WG_MAX_OUTPUTS = 1024;
let columnsInWorkgroup = true;
/** Column reductions of 2–16 chunks in one dispatch (default) or two (for tests and benchmarks). */
export function setColumnsInWorkgroup(on: boolean): void {
  columnsInWorkgroup = on;
}
import {
  redArgs,
  reductionLibrary,
  ROW_INDEX,
  rowEnables,
  rowEntryArgs,
  rowGrid,
  rowSetup,
  useSubgroups,
  type SubgroupFlavour,
} from './row-reduce.js';
import { rowReducePlan, rowWorkgroupSize } from './tuning.js';
import { uniforms } from './uniforms.js';
import { isContiguous, type View } from './view.js';

export { setReductionMode, type ReductionMode } from './row-reduce.js';

export type ReduceOp = 'sum' | 'mean' | 'max' | 'min' | 'argmax' | 'argmin' | 'sumsq';

export interface ReduceLayout {
  outer: number;
  R: number;
  inner: number;
  /** Strides in elements (may be negative or zero). */
  sOuter: number;
  sR: number;
  sInner: number;
}

type Combine = 'sum' | 'max' | 'min' | 'argmax' | 'argmin';
type Prep = 'none' | 'square' | 'center';

interface Source {
  buffer: PooledBuffer;
  dtype: DType;
  offset: number;
  /** Indices of the elements (i32, same layout, offset 0): set for chunk partials of argmax/argmin. */
  indices: PooledBuffer | null;
}

interface Stage {
  combine: Combine;
  prep: Prep;
  /** Per-output values subtracted before squaring (prep 'center'): f32 [outer * inner], offset 0. */
  center: PooledBuffer | null;
  /** Final stage only: result · scale; with nanFlag, NaN where the sum is 0 and inf elsewhere. */
  scale: number;
  nanFlag: boolean;
}

const ROWS_MAX_PER_THREAD = 16;
const COLUMNS_MAX_PER_THREAD = 64;
/** Longest run one invocation sums serially when a row is reduced one per invocation (longer rows are chunked). */
const THREAD_ROW_MAX_CHUNK = 2048;

/**
 * Reduces x viewed as [outer, R, inner] (strides given explicitly, any strides) over R into out
 * [outer, inner] (contiguous). argmax/argmin write i32 indices into R (first max/min wins; NaN
 * counts as the maximum and the minimum, as in torch). max/min propagate NaN. sumsq = Σ x².
 * Empty R: sum/sumsq give 0, mean gives NaN, the others throw.
 */
export function reduceInto(x: View, layout: ReduceLayout, out: View, op: ReduceOp): void {
  const isArg = op === 'argmax' || op === 'argmin';
  check(x, layout, out, isArg ? 'i32' : null, `reduce(${op})`);
  if (layout.outer * layout.inner === 0) return;
  if (layout.R === 0 && (op === 'max' || op === 'min' || isArg)) throw new RangeError(`reduce(${op}): cannot reduce an empty axis (R = 0)`);
  const combine: Combine = op === 'mean' || op === 'sumsq' ? 'sum' : op;
  const stage: Stage = {
    combine,
    prep: op === 'sumsq' ? 'square' : 'none',
    center: null,
    scale: op === 'mean' ? 1 / layout.R : 1,
    nanFlag: op === 'mean' && layout.R === 0,
  };
  reduceStages({ buffer: x.buffer, dtype: x.dtype, offset: x.offset, indices: null }, layout, out, stage);
}

/**
 * Variance over R with torch semantics: Σ(x − mean)² / max(0, R − correction) (correction 1 is
 * the unbiased estimator). A zero divisor gives NaN where the squared deviations sum to 0 and
 * inf elsewhere, as torch does.
 */
export function varianceInto(x: View, layout: ReduceLayout, out: View, correction = 1): void {
  check(x, layout, out, null, 'variance');
  const nOut = layout.outer * layout.inner;
  if (nOut === 0) return;
  const src: Source = { buffer: x.buffer, dtype: x.dtype, offset: x.offset, indices: null };
  const rt = runtime();
  const meanBuf = rt.allocate(nOut * 4, 'variance-mean');
  const meanView: View = { buffer: meanBuf, dtype: 'f32', shape: [nOut], strides: [1], offset: 0 };
  reduceStages(src, layout, meanView, {
    combine: 'sum',
    prep: 'none',
    center: null,
    scale: layout.R === 0 ? 1 : 1 / layout.R,
    nanFlag: false,
  });
  const divisor = Math.max(0, layout.R - correction);
  reduceStages(src, layout, out, {
    combine: 'sum',
    prep: 'center',
    center: meanBuf,
    scale: divisor > 0 ? 1 / divisor : 1,
    nanFlag: divisor <= 0,
  });
  rt.release(meanBuf);
}

function check(x: View, L: ReduceLayout, out: View, outDtype: DType | null, op: string): void {
  for (const k of ['outer', 'R', 'inner'] as const) {
    if (!Number.isInteger(L[k]) || L[k] < 0) throw new RangeError(`${op}: layout.${k} must be a non-negative integer, got ${L[k]}`);
  }
  if (x.dtype !== 'f32' && x.dtype !== 'f16') throw new TypeError(`${op}: input dtype must be f32 or f16, got ${x.dtype}`);
  if (outDtype ? out.dtype !== outDtype : out.dtype !== 'f32' && out.dtype !== 'f16') {
    throw new TypeError(`${op}: output dtype must be ${outDtype ?? 'f32 or f16'}, got ${out.dtype}`);
  }
  if (!isContiguous(out) || sizeOf(out.shape) !== L.outer * L.inner) {
    throw new RangeError(
      `${op}: output must be contiguous with outer·inner = ${L.outer * L.inner} elements, got shape [${out.shape.join(', ')}]`,
    );
  }
}

/** Runs one dispatch, or a chunked dispatch into partials followed by reducing the partials. */
function reduceStages(src: Source, L: ReduceLayout, out: View, stage: Stage): void {
  const rt = runtime();
  const rowLike = L.R > 16 && (L.inner === 1 || Math.abs(L.sR) < Math.abs(L.sInner));
  // Where the tuning table runs short rows one per invocation (CPU adapters: no barriers), a row
  // reduction uses the one-output-per-thread kernel with the whole row as its chunk.
  const plan = rowLike ? rowReducePlan(L.R) : null;
  const rows = rowLike && !plan?.perThread;
  const wg = rows ? rowWorkgroupSize(L.R) : plan ? plan.wg : 256;
  const maxChunk = rows
    ? wg * ROWS_MAX_PER_THREAD
    : plan
      ? Math.min(Math.max(COLUMNS_MAX_PER_THREAD, L.R), THREAD_ROW_MAX_CHUNK)
      : COLUMNS_MAX_PER_THREAD;
  const chunks = Math.max(1, Math.ceil(L.R / maxChunk));
  const chunkLen = Math.max(1, Math.ceil(L.R / chunks));
  const isArg = stage.combine === 'argmax' || stage.combine === 'argmin';
  const nOut = L.outer * chunks * L.inner;
  if (chunks === 1) {
    dispatchReduce(src, L, 1, chunkLen, rows, wg, stage, true, isArg ? null : out, isArg ? out : null);
    return;
  }
  // A few column chunks of few outputs: partials combined inside a workgroup (bitwise the same as
  // two dispatches). Measured on lavapipe: [1024, 96] 0.28 vs 0.35 ms; [1024, 2048] 4.6 vs 4.2 ms
  // (wide outputs keep the more parallel two-dispatch path).
  const fewOutputs = L.outer * L.inner <= COLUMNS_WG_MAX_OUTPUTS;
  if (columnsInWorkgroup && fewOutputs && !rowLike && !isArg && !src.indices && chunks <= COLUMNS_WG_MAX_CHUNKS) {
    dispatchColumnsInWorkgroup({
      x: src.buffer,
      xT: src.dtype,
      xOffset: src.offset,
      layout: L,
      chunks,
      chunkLen,
      combine: stage.combine as 'sum',
      prep: stage.prep,
      center: stage.center,
      out: out.buffer,
      outT: out.dtype,
      outOffset: out.offset,
      scale: stage.scale,
      nanFlag: stage.nanFlag,
    });
    return;
  }
  const vals = rt.allocate(nOut * 4, 'reduce-partials');
  const idx = isArg ? rt.allocate(nOut * 4, 'reduce-partial-indices') : null;
  const partial = (buffer: PooledBuffer, dtype: DType): View => ({ buffer, dtype, shape: [nOut], strides: [1], offset: 0 });
  dispatchReduce(src, L, chunks, chunkLen, rows, wg, stage, false, partial(vals, 'f32'), idx ? partial(idx, 'i32') : null);
  const next: ReduceLayout = { outer: L.outer, R: chunks, inner: L.inner, sOuter: chunks * L.inner, sR: L.inner, sInner: 1 };
  reduceStages({ buffer: vals, dtype: 'f32', offset: 0, indices: idx }, next, out, { ...stage, prep: 'none', center: null });
  rt.release(vals);
  if (idx) rt.release(idx);
}

function dispatchReduce(
  src: Source,
  L: ReduceLayout,
  chunks: number,
  chunkLen: number,
  rows: boolean,
  wg: number,
  stage: Stage,
  final: boolean,
  vOut: View | null,
  iOut: View | null,
): void {
  const sg = rows ? useSubgroups() : false;
  const spec: KernelSpec = {
    rows,
    wg,
    sg,
    combine: stage.combine,
    prep: stage.prep,
    final,
    idxIn: src.indices !== null,
    xT: src.dtype,
    vT: vOut?.dtype ?? null,
    hasI: iOut !== null,
  };
  const key = `reduce|${rows ? 'rows' : 'cols'}|wg${wg}|sg${sg}|${spec.combine}|${spec.prep}|final${+final}|idx${+spec.idxIn}|${spec.xT}>${spec.vT ?? '-'}${spec.hasI ? '+i32' : ''}`;
  const bindings: ('read' | 'write' | 'uniform')[] = ['read'];
  const buffers = [src.buffer];
  const bind = (kind: 'read' | 'write', buffer: (typeof buffers)[number]) => {
    bindings.push(kind);
    buffers.push(buffer);
  };
  if (src.indices) bind('read', src.indices);
  if (stage.center) bind('read', stage.center);
  if (vOut) bind('write', vOut.buffer);
  if (iOut) bind('write', iOut.buffer);
  bindings.push('uniform');
  const total = L.outer * chunks * L.inner;
  const params = REDUCE_UNIFORMS.pack({
    outputs: total,
    R: L.R,
    inner: L.inner,
    s_outer: L.sOuter,
    s_r: L.sR,
    s_inner: L.sInner,
    x_offset: src.offset,
    chunk_len: chunkLen,
    chunks,
    v_offset: vOut?.offset ?? 0,
    i_offset: iOut?.offset ?? 0,
    scale: stage.scale,
    nan_flag: stage.nanFlag ? 1 : 0,
  });
  const rt = runtime();
  // While a step is recorded, a single-chunk column reduction describes itself so two of one
  // layout can share a dispatch (reduce-columns.ts).
  const pairable =
    rt.recording &&
    !rows &&
    final &&
    chunks === 1 &&
    !src.indices &&
    vOut &&
    !iOut &&
    stage.prep !== 'center' &&
    !isArgCombine(stage.combine);
  const fuse: ColumnsReduceFuse | undefined = pairable
    ? {
        columnsReduce: {
          combine: stage.combine as 'sum',
          prep: stage.prep as 'none',
          xT: src.dtype,
          vT: vOut.dtype,
          wg,
          outputs: total,
          R: L.R,
          inner: L.inner,
          sOuter: L.sOuter,
          sR: L.sR,
          sInner: L.sInner,
          scale: stage.scale,
          nanFlag: stage.nanFlag,
          xOffset: src.offset,
          vOffset: vOut.offset,
        },
      }
    : undefined;
  rt.dispatch({ key, bindings, wgsl: () => reduceSource(spec), fuse }, buffers, rows ? rowGrid(total) : grid1d(total, wg), params);
}

/**
 * Parameters: `outputs` = outer·chunks·inner threads or workgroups; x's strides and offset; the
 * chunk of R each output covers; the output offsets (values, indices); the final stage's scale,
 * and `nan_flag` (a zero divisor: NaN where the sum is 0, inf elsewhere).
 */
const REDUCE_UNIFORMS = uniforms({
  outputs: 'u32',
  R: 'u32',
  inner: 'u32',
  s_outer: 'u32',
  s_r: 'u32',
  s_inner: 'u32',
  x_offset: 'u32',
  chunk_len: 'u32',
  chunks: 'u32',
  v_offset: 'u32',
  i_offset: 'u32',
  scale: 'f32',
  nan_flag: 'u32',
});

interface KernelSpec {
  rows: boolean;
  wg: number;
  sg: SubgroupFlavour;
  combine: Combine;
  prep: Prep;
  final: boolean;
  idxIn: boolean;
  xT: DType;
  vT: DType | null;
  hasI: boolean;
}

/** The argmax/argmin pair order: does (vb, ib) beat (va, ia)? NaN beats numbers; ties go to the lower index. */
function argPickWgsl(combine: 'argmax' | 'argmin'): string {
  const cmp = combine === 'argmax' ? '>' : '<';
  return `fn arg_beats(va: f32, ia: i32, vb: f32, ib: i32) -> bool {
  let na = is_nan(va);
  let nb = is_nan(vb);
  if (na || nb) { return nb && (!na || ib < ia); }
  return vb ${cmp} va || (vb == va && ib < ia);
}
var<workgroup> red_i: array<i32, WG>;
fn wg_arg_tree(v: f32, i: i32, lid: u32) -> vec2<u32> {
  red_f[lid] = v;
  red_i[lid] = i;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s && arg_beats(red_f[lid], red_i[lid], red_f[lid + s], red_i[lid + s])) {
      red_f[lid] = red_f[lid + s];
      red_i[lid] = red_i[lid + s];
    }
    workgroupBarrier();
  }
  let r = vec2<u32>(bitcast<u32>(red_f[0]), bitcast<u32>(red_i[0]));
  workgroupBarrier();
  return r;
}`;
}

/** Subgroup argmax/argmin: best value (NaN first), then the lowest index holding it. */
function argSubgroupWgsl(combine: 'argmax' | 'argmin'): string {
  const best = combine === 'argmax' ? 'subgroupMax' : 'subgroupMin';
  const ident = combine === 'argmax' ? '-f_inf()' : 'f_inf()';
  return `fn sg_arg(v: f32, i: i32) -> vec2<u32> {
  let any_nan = subgroupAny(is_nan(v));
  let m = ${best}(v);
  let cand = select(v == m, is_nan(v), any_nan);
  let bi = subgroupMin(select(0x7fffffff, i, cand));
  let bv = select(m, f_nan(), any_nan);
  return vec2<u32>(bitcast<u32>(bv), bitcast<u32>(bi));
}
fn wg_arg(v: f32, i: i32, lid: u32, lane: u32, size: u32, ok: bool) -> vec2<u32> {
  if (ok) {
    let part = sg_arg(v, i);
    if (lane == 0u) { red_f[lid / size] = bitcast<f32>(part.x); red_i[lid / size] = bitcast<i32>(part.y); }
    workgroupBarrier();
    let n = (WG + size - 1u) / size;
    var bv = ${ident};
    var bi = 0x7fffffff;
    for (var k = 0u; k < n; k += size) {
      if (k + lane < n && arg_beats(bv, bi, red_f[k + lane], red_i[k + lane])) { bv = red_f[k + lane]; bi = red_i[k + lane]; }
    }
    let r = sg_arg(bv, bi);
    workgroupBarrier();
    return r;
  }
  return wg_arg_tree(v, i, lid);
}`;
}

function reduceSource(k: KernelSpec): string {
  const isArg = k.combine === 'argmax' || k.combine === 'argmin';
  let b = 0;
  const decl: string[] = [`@group(0) @binding(${b++}) var<storage, read> xb: array<${k.xT}>;`];
  if (k.idxIn) decl.push(`@group(0) @binding(${b++}) var<storage, read> ib: array<i32>;`);
  if (k.prep === 'center') decl.push(`@group(0) @binding(${b++}) var<storage, read> cb: array<f32>;`);
  if (k.vT) decl.push(`@group(0) @binding(${b++}) var<storage, read_write> vb: array<${k.vT}>;`);
  if (k.hasI) decl.push(`@group(0) @binding(${b++}) var<storage, read_write> jb: array<i32>;`);
  decl.push(REDUCE_UNIFORMS.wgsl(b));

  const value =
    k.prep === 'square'
      ? 'let xv = f32(xb[e]); let v = xv * xv;'
      : k.prep === 'center'
        ? 'let d = f32(xb[e]) - cb[o * inner + i]; let v = d * d;'
        : 'let v = f32(xb[e]);';
  const index = k.idxIn ? 'ib[e]' : 'i32(r)';
  const ident = k.combine === 'sum' ? '0.0' : k.combine === 'max' || k.combine === 'argmax' ? '-f_inf()' : 'f_inf()';
  const step = isArg
    ? `let j = ${index}; if (arg_beats(acc, best_i, v, j)) { acc = v; best_i = j; }`
    : `acc = ${k.combine === 'sum' ? 'acc + v' : `c_${k.combine}(acc, v)`};`;
  const loop = k.rows ? 'for (var r = r0 + lid; r < r1; r += WG)' : 'for (var r = r0; r < r1; r++)';

  const args = redArgs(k.sg);
  let combineAll = '';
  if (k.rows) {
    combineAll = isArg
      ? `let red = ${k.sg ? `wg_arg(acc, best_i, ${args})` : 'wg_arg_tree(acc, best_i, lid)'};\n  acc = bitcast<f32>(red.x);\n  best_i = bitcast<i32>(red.y);`
      : `acc = wg_${k.combine}(acc, ${args});`;
  }
  const writes: string[] = [];
  if (k.vT) {
    const res = k.final ? 'select(acc * params.scale, select(f_inf(), f_nan(), acc == 0.0), params.nan_flag != 0u)' : 'acc';
    writes.push(`vb[params.v_offset + g] = ${k.vT}(${res});`);
  }
  if (k.hasI) writes.push('jb[params.i_offset + g] = best_i;');
  const guardWrite = k.rows ? `if (lid == 0u) { ${writes.join(' ')} }` : writes.join('\n  ');

  const entry = k.rows
    ? `@compute @workgroup_size(${k.wg})
fn main(${rowEntryArgs(k.sg)}) {
  let g = ${ROW_INDEX};
  if (g >= params.outputs) { return; }
  ${rowSetup(k.sg)}`
    : `@compute @workgroup_size(${k.wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = gid.x + gid.y * (nwg.x * WG);
  if (g >= params.outputs) { return; }`;

  return `${rowEnables([k.xT, ...(k.vT ? [k.vT] : [])], k.sg)}${decl.join('\n')}
${reductionLibrary(k.wg, k.sg)}
${isArg ? argPickWgsl(k.combine as 'argmax') : ''}
${isArg && k.sg ? argSubgroupWgsl(k.combine as 'argmax') : ''}
${entry}
  let inner = params.inner;
  let chunks = params.chunks;
  let i = g % inner;
  let t = g / inner;
  let c = t % chunks;
  let o = t / chunks;
  let base = params.x_offset + o * params.s_outer + i * params.s_inner;
  let r0 = c * params.chunk_len;
  let r1 = min(params.R, r0 + params.chunk_len);
  let s_r = params.s_r;
  var acc = ${ident};
  var best_i = 0x7fffffff;
  ${loop} {
    let e = base + r * s_r;
    ${value}
    ${step}
  }
  ${combineAll}
  ${guardWrite}
}`;
}
