/**
 * Fused scaled-dot-product attention, forward and backward, in the flash-attention style: scores
 * live only in registers, one tile of keys (or queries) at a time, so memory is linear in N.
 *
 *   forward   one workgroup per (query block, head, batch); a thread owns one query row and keeps
 *             its output row, running max and running sum in registers (online softmax); K/V tiles
 *             are staged in workgroup memory. Saves lse = log Σ exp(scale·q·k) per row.
 *   backward  delta = rowsum(dO ∘ O) (one thread per row), then
 *             dQ  : one thread per query row, looping over key tiles   (dQ = scale·dS·K)
 *             dK/dV: one thread per key row, looping over query tiles (dV = Pᵀ·dO, dK = scale·dSᵀ·Q)
 *             with P = exp(scale·QKᵀ − lse) recomputed tile by tile and dS = P∘(dO·Vᵀ − delta).
 *             Each output element is written by exactly one thread: deterministic, no atomics.
 *
 * Operands are [B, H, N, D] views with any strides and offsets (e.g. q/k/v sliced out of a fused
 * [B, N, 3, H, D] projection), f32 or f16 (f32 accumulation). Rows are unrolled over D in vec4
 * registers (D is padded to a multiple of 4 with zeros), so kernels are specialised on D, the
 * tile sizes and every operand dtype; all of it is in the pipeline key.
 */
import { runtime } from '../gpu/runtime.js';
import type { DType } from '../tensor/dtype.js';
import { byteSize } from '../tensor/dtype.js';
import { enables, FLAT_INDEX, grid1d, Params, paramsDecl, WG } from './common.js';
import type { View } from './view.js';

/** Largest head dim the unrolled register rows are generated for. */
export const MAX_HEAD_DIM = 256;

export interface AttentionTiles {
  /** Threads per workgroup = rows (queries in forward/dQ, keys in dK/dV) per workgroup. */
  rows: number;
  /** Rows of the other operand staged in workgroup memory per loop step. */
  cols: number;
}

/** Tile overrides, for benchmarks and autotuning; null = the default choice. */
let tileOverride: AttentionTiles | null = null;
export function setAttentionTiles(t: AttentionTiles | null): void {
  tileOverride = t;
}

/**
 * Default tiles for head dim `d`: 64 rows per workgroup; the staged tile is the largest power of
 * two ≤ 32 whose two vec4 tiles (K,V or Q,dO) plus two per-row scalars fit in workgroup memory
 * (32 KiB on lavapipe, 48 KiB on NVIDIA, 16 KiB guaranteed by WebGPU).
 */
export function attentionTiles(d: number): AttentionTiles {
  if (tileOverride) return tileOverride;
  const dp = Math.ceil(d / 4) * 4;
  const limit = runtime().limits.maxComputeWorkgroupStorageSize;
  let cols = 32;
  while (cols > 4 && cols * (2 * dp * 4 + 8) > limit) cols /= 2;
  return { rows: 64, cols };
}

// ---- parameter layout: a header, then 5 words per operand [sB, sH, sN, sD, offset] ----

const HEADER = 4; // Nq, Nk, scale·log2(e), scale
const WORDS = 5;

interface Operand {
  name: string;
  view: View;
  access: 'read' | 'write';
}

function checkView(op: string, name: string, v: View, shape: readonly number[]): void {
  if (v.shape.length !== shape.length || v.shape.some((s, i) => s !== shape[i])) {
    throw new RangeError(`${op}: ${name} must have shape [${shape.join(', ')}], got [${v.shape.join(', ')}]`);
  }
  if (v.dtype !== 'f32' && v.dtype !== 'f16') throw new TypeError(`${op}: ${name} must be f32 or f16, got ${v.dtype}`);
}

/** Header [Nq, Nk, scale·log2(e), scale] (the delta kernel uses [Nq, H, B, -]). */
function packParams(header: Params, ops: Operand[]): Uint32Array {
  const p = header.pad(HEADER);
  for (const { view: v } of ops) {
    // 3-D operands (lse, delta) have no D stride. u32 wrap-around keeps negative strides exact.
    const s = v.shape.length === 4 ? v.strides : [...v.strides, 0];
    p.u(s[0], s[1], s[2], s[3], v.offset);
  }
  return p.build();
}

const paramVec4s = (nOps: number) => Math.ceil((HEADER + WORDS * nOps) / 4);

/** Binding declarations for the operands (in order) and the params uniform after them. */
function declarations(ops: Operand[]): string {
  const lines = ops.map((o, i) => {
    const mode = o.access === 'read' ? 'read' : 'read_write';
    return `@group(0) @binding(${i}) var<storage, ${mode}> ${o.name}_buf: array<${o.view.dtype}>;`;
  });
  return `${enables(ops.map((o) => o.view.dtype))}${lines.join('\n')}\n${paramsDecl(ops.length, paramVec4s(ops.length))}`;
}

/** Per-operand base offset for this (b, h) and its row / element strides, as WGSL lets. */
function operandLets(ops: Operand[]): string {
  return ops
    .map((o, i) => {
      const w = HEADER + WORDS * i;
      return `  let ${o.name}_base = pu(${w + 4}u) + b * pu(${w}u) + h * pu(${w + 1}u);
  let ${o.name}_sn = pu(${w + 2}u);
  let ${o.name}_sd = pu(${w + 3}u);`;
    })
    .join('\n');
}

/**
 * How a row of D values lives in a thread: `unroll` = one named vec4 register per 4 elements
 * (fastest code on GPUs, but LLVM-based drivers compile it slowly for large D); otherwise a
 * private array walked by loops.
 */
let unrollRows = true;
export function setAttentionUnroll(on: boolean): void {
  unrollRows = on;
}

/** Code for a statement over each vec4 `i` of a row: f(register, index expression). */
function each(reg: string, dv4: number, f: (r: string, i: string) => string, indent = '      '): string {
  if (!unrollRows) return `${indent}for (var i = 0u; i < ${dv4}u; i++) { ${f(`${reg}[i]`, 'i')} }`;
  return Array.from({ length: dv4 }, (_, i) => `${indent}${f(`${reg}_${i}`, `${i}u`)}`).join('\n');
}

function zeros(reg: string, dv4: number): string {
  if (!unrollRows) return `  var ${reg}: array<vec4<f32>, ${dv4}>;`;
  return Array.from({ length: dv4 }, (_, i) => `  var ${reg}_${i} = vec4<f32>(0.0);`).join('\n');
}

/** One element of a row: column c (a WGSL u32 expression). */
function elem(reg: string, c: number): string {
  return unrollRows ? `${reg}_${c >> 2}[${c & 3}]` : `${reg}[${c >> 2}u][${c & 3}u]`;
}

/** WGSL loading row `row` of `name` into row registers `reg` (zero when !valid). */
function loadRow(name: string, reg: string, row: string, valid: string, d: number, scale = ''): string {
  const dv4 = Math.ceil(d / 4);
  const comps = (i: string) =>
    [0, 1, 2, 3].map((c) => {
      const col = `(4u * ${i} + ${c}u)`;
      if (d % 4 === 0) return `f32(${name}_buf[rb + ${col} * ${name}_sd])`;
      return `select(0.0, f32(${name}_buf[rb + min(${col}, ${d - 1}u) * ${name}_sd]), ${col} < ${d}u)`;
    });
  return `${zeros(reg, dv4)}
  if (${valid}) {
    let rb = ${name}_base + ${row} * ${name}_sn;
${each(reg, dv4, (r, i) => `${r} = vec4<f32>(${comps(i).join(', ')})${scale};`, '    ')}
  }`;
}

/** WGSL storing row registers `reg` · factor into row `row` of `name` when `valid`. */
function storeRow(name: string, reg: string, row: string, valid: string, d: number, dtype: DType, factor: string): string {
  const out = [`  if (${valid}) {\n    let rb = ${name}_base + ${row} * ${name}_sn;`];
  if (unrollRows) {
    for (let c = 0; c < d; c++) out.push(`    ${name}_buf[rb + ${c}u * ${name}_sd] = ${dtype}(${elem(reg, c)} * ${factor});`);
  } else {
    out.push(`    for (var c = 0u; c < ${d}u; c++) { ${name}_buf[rb + c * ${name}_sd] = ${dtype}(${reg}[c / 4u][c % 4u] * ${factor}); }`);
  }
  out.push('  }');
  return out.join('\n');
}

/**
 * WGSL staging rows [start, start + cols) of `name` into the workgroup array `tile` (vec4 per 4
 * elements, zeros past `limit` and past D). Callers put barriers around it.
 */
function loadTile(name: string, tile: string, start: string, limit: string, cols: number, d: number, threads: number): string {
  const dv4 = Math.ceil(d / 4);
  const comps = [0, 1, 2, 3].map((c) => {
    if (d % 4 === 0) return `f32(${name}_buf[rb + (c + ${c}u) * ${name}_sd])`;
    // Past D: select() evaluates both sides, so clamp the index and zero the value.
    return `select(0.0, f32(${name}_buf[rb + min(c + ${c}u, ${d - 1}u) * ${name}_sd]), c + ${c}u < ${d}u)`;
  });
  return `  for (var e = lid; e < ${cols * dv4}u; e += ${threads}u) {
    let j = e / ${dv4}u;
    var val = vec4<f32>(0.0);
    if (${start} + j < ${limit}) {
      let rb = ${name}_base + (${start} + j) * ${name}_sn;
      let c = (e % ${dv4}u) * 4u;
      val = vec4<f32>(${comps.join(', ')});
    }
    ${tile}[e] = val;
  }`;
}

/** Σ over the row of reg · tile[base + i], in two accumulators for instruction-level parallelism. */
function dotRow(a: string, tile: string, base: string, dv4: number): string {
  const acc = ['vec4<f32>(0.0)', 'vec4<f32>(0.0)'];
  for (let i = 0; i < dv4; i++) {
    const term = `${a}_${i} * ${tile}[${base} + ${i}u]`;
    acc[i & 1] = i < 2 ? term : `fma(${a}_${i}, ${tile}[${base} + ${i}u], ${acc[i & 1]})`;
  }
  return `dot(${acc[0]} + ${acc[1]}, vec4<f32>(1.0))`;
}

/** For looped rows: the statement computing `name` = dot(reg, tile row at base). */
function dotLet(name: string, a: string, tile: string, base: string, dv4: number): string {
  if (unrollRows) return `      let ${name} = ${dotRow(a, tile, base, dv4)};`;
  return `      var ${name}_acc = vec4<f32>(0.0);
      for (var i = 0u; i < ${dv4}u; i++) { ${name}_acc = fma(${a}[i], ${tile}[${base} + i], ${name}_acc); }
      let ${name} = dot(${name}_acc, vec4<f32>(1.0));`;
}

const MAIN = `@compute @workgroup_size(T)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let h = wid.y;
  let b = wid.z;
  let Nq = pu(0u);
  let Nk = pu(1u);
  let sl2 = pf(2u);
  let scale = pf(3u);
  let row = wid.x * T + lid;`;

function forwardSource(d: number, t: AttentionTiles, ops: Operand[]): string {
  const dv4 = Math.ceil(d / 4);
  const [o, lse] = [ops[3], ops[4]];
  return `${declarations(ops)}
const T = ${t.rows}u;
const BC = ${t.cols}u;
var<workgroup> k_tile: array<vec4<f32>, ${t.cols * dv4}>;
var<workgroup> v_tile: array<vec4<f32>, ${t.cols * dv4}>;
// This thread's scores of the current key tile (a private array indexed in a loop compiles badly).
var<workgroup> s_tile: array<f32, ${t.cols * t.rows}>;
${MAIN}
${operandLets(ops)}
  let valid = row < Nq;
  // q is pre-multiplied by scale·log2(e): scores come out in log2 units, ready for exp2.
${loadRow('q', 'q', 'row', 'valid', d, ' * sl2')}
${zeros('acc', dv4)}
  var m = -3.0e38;
  var l = 0.0;
  for (var kt = 0u; kt < Nk; kt += BC) {
    let cnt = min(BC, Nk - kt);
    workgroupBarrier();
${loadTile('k', 'k_tile', 'kt', 'Nk', t.cols, d, t.rows)}
${loadTile('v', 'v_tile', 'kt', 'Nk', t.cols, d, t.rows)}
    workgroupBarrier();
    var mt = m;
    for (var j = 0u; j < cnt; j++) {
${dotLet('sj', 'q', 'k_tile', `j * ${dv4}u`, dv4)}
      s_tile[j * T + lid] = sj;
      mt = max(mt, sj);
    }
    let alpha = exp2(m - mt);
    l *= alpha;
${each('acc', dv4, (r) => `${r} *= alpha;`)}
    for (var j = 0u; j < cnt; j++) {
      let p = exp2(s_tile[j * T + lid] - mt);
      l += p;
      let vb = j * ${dv4}u;
${each('acc', dv4, (r, i) => `${r} = fma(vec4<f32>(p), v_tile[vb + ${i}], ${r});`)}
    }
    m = mt;
  }
  let inv = 1.0 / l;
${storeRow('o', 'acc', 'row', 'valid', d, o.view.dtype, 'inv')}
  if (valid) { lse_buf[lse_base + row * lse_sn] = ${lse.view.dtype}((m + log2(l)) * ${Math.LN2}); }
}`;
}

function deltaSource(d: number, ops: Operand[]): string {
  return `${declarations(ops)}
const WG = ${WG}u;
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${FLAT_INDEX};
  let Nq = pu(0u);
  let H = pu(1u);
  if (i >= Nq * H * pu(2u)) { return; }
  let row = i % Nq;
  let h = (i / Nq) % H;
  let b = i / (Nq * H);
${operandLets(ops)}
  let ob = o_base + row * o_sn;
  let gb = dO_base + row * dO_sn;
  var acc = 0.0;
  for (var c = 0u; c < ${d}u; c++) { acc += f32(o_buf[ob + c * o_sd]) * f32(dO_buf[gb + c * dO_sd]); }
  delta_buf[delta_base + row * delta_sn] = acc;
}`;
}

function dqSource(d: number, t: AttentionTiles, ops: Operand[]): string {
  const dv4 = Math.ceil(d / 4);
  return `${declarations(ops)}
const T = ${t.rows}u;
const BC = ${t.cols}u;
var<workgroup> k_tile: array<vec4<f32>, ${t.cols * dv4}>;
var<workgroup> v_tile: array<vec4<f32>, ${t.cols * dv4}>;
${MAIN}
${operandLets(ops)}
  let valid = row < Nq;
${loadRow('q', 'q', 'row', 'valid', d, ' * sl2')}
${loadRow('dO', 'g', 'row', 'valid', d)}
  var lse2 = 0.0;
  var dlt = 0.0;
  if (valid) {
    lse2 = f32(lse_buf[lse_base + row * lse_sn]) * ${Math.LOG2E};
    dlt = f32(delta_buf[delta_base + row * delta_sn]);
  }
${zeros('acc', dv4)}
  for (var kt = 0u; kt < Nk; kt += BC) {
    let cnt = min(BC, Nk - kt);
    workgroupBarrier();
${loadTile('k', 'k_tile', 'kt', 'Nk', t.cols, d, t.rows)}
${loadTile('v', 'v_tile', 'kt', 'Nk', t.cols, d, t.rows)}
    workgroupBarrier();
    for (var j = 0u; j < cnt; j++) {
      let kb = j * ${dv4}u;
${dotLet('s', 'q', 'k_tile', 'kb', dv4)}
${dotLet('dp', 'g', 'v_tile', 'kb', dv4)}
      let p = exp2(s - lse2);
      let ds = p * (dp - dlt);
${each('acc', dv4, (r, i) => `${r} = fma(vec4<f32>(ds), k_tile[kb + ${i}], ${r});`)}
    }
  }
${storeRow('dq', 'acc', 'row', 'valid', d, ops[6].view.dtype, 'scale')}
}`;
}

function dkdvSource(d: number, t: AttentionTiles, ops: Operand[]): string {
  const dv4 = Math.ceil(d / 4);
  return `${declarations(ops)}
const T = ${t.rows}u;
const BC = ${t.cols}u;
var<workgroup> q_tile: array<vec4<f32>, ${t.cols * dv4}>;
var<workgroup> g_tile: array<vec4<f32>, ${t.cols * dv4}>;
var<workgroup> lse_tile: array<f32, ${t.cols}>;
var<workgroup> dlt_tile: array<f32, ${t.cols}>;
${MAIN}
${operandLets(ops)}
  let valid = row < Nk;
  // k carries scale·log2(e) so that k·q is the score in log2 units.
${loadRow('k', 'k', 'row', 'valid', d, ' * sl2')}
${loadRow('v', 'v', 'row', 'valid', d)}
${zeros('dk', dv4)}
${zeros('dv', dv4)}
  for (var qt = 0u; qt < Nq; qt += BC) {
    let cnt = min(BC, Nq - qt);
    workgroupBarrier();
${loadTile('q', 'q_tile', 'qt', 'Nq', t.cols, d, t.rows)}
${loadTile('dO', 'g_tile', 'qt', 'Nq', t.cols, d, t.rows)}
    for (var e = lid; e < BC; e += T) {
      var ls = 0.0;
      var dl = 0.0;
      if (qt + e < Nq) {
        ls = f32(lse_buf[lse_base + (qt + e) * lse_sn]) * ${Math.LOG2E};
        dl = f32(delta_buf[delta_base + (qt + e) * delta_sn]);
      }
      lse_tile[e] = ls;
      dlt_tile[e] = dl;
    }
    workgroupBarrier();
    for (var r = 0u; r < cnt; r++) {
      let qb = r * ${dv4}u;
${dotLet('s', 'k', 'q_tile', 'qb', dv4)}
${dotLet('dp', 'v', 'g_tile', 'qb', dv4)}
      let p = exp2(s - lse_tile[r]);
      let ds = p * (dp - dlt_tile[r]);
${each('dv', dv4, (x, i) => `${x} = fma(vec4<f32>(p), g_tile[qb + ${i}], ${x});`)}
${each('dk', dv4, (x, i) => `${x} = fma(vec4<f32>(ds), q_tile[qb + ${i}], ${x});`)}
    }
  }
${storeRow('dk', 'dk', 'row', 'valid', d, ops[6].view.dtype, 'scale')}
${storeRow('dv', 'dv', 'row', 'valid', d, ops[7].view.dtype, '1.0')}
}`;
}

interface Dims {
  b: number;
  h: number;
  nq: number;
  nk: number;
  d: number;
}

function checkQKV(op: string, q: View, k: View, v: View): Dims {
  if (q.shape.length !== 4) throw new RangeError(`${op}: q must be [B, H, Nq, D], got [${q.shape.join(', ')}]`);
  const [b, h, nq, d] = q.shape;
  const nk = k.shape[2] ?? 0;
  checkView(op, 'q', q, [b, h, nq, d]);
  checkView(op, 'k', k, [b, h, nk, d]);
  checkView(op, 'v', v, [b, h, nk, d]);
  if (d < 1 || d > MAX_HEAD_DIM) throw new RangeError(`${op}: head dim ${d} must be in [1, ${MAX_HEAD_DIM}]`);
  if (nk === 0 && nq > 0) throw new RangeError(`${op}: attention over zero keys is undefined (k has Nk = 0)`);
  return { b, h, nq, nk, d };
}

function checkLse(op: string, name: string, lse: View, s: Dims): void {
  if (lse.dtype !== 'f32') throw new TypeError(`${op}: ${name} must be f32, got ${lse.dtype}`);
  checkView(op, name, lse, [s.b, s.h, s.nq]);
}

const header = (s: Dims, scale: number) => new Params().u(s.nq, s.nk).f(scale * Math.LOG2E, scale);
const tileKey = (t: AttentionTiles) => `r${t.rows}c${t.cols}${unrollRows ? 'u' : 'l'}`;
const dtypeKey = (ops: Operand[]) => ops.map((o) => o.view.dtype).join(',');

function dispatchOps(key: string, wgsl: () => string, ops: Operand[], groups: [number, number, number], params: Uint32Array): void {
  runtime().dispatch(
    { key, bindings: [...ops.map((o) => o.access), 'uniform'], wgsl },
    ops.map((o) => o.view.buffer),
    groups,
    params,
  );
}

/**
 * o = softmax(scale · q kᵀ) v and lse = log Σ_j exp(scale · q·k_j), per (batch, head, query).
 * q: [B,H,Nq,D], k, v: [B,H,Nk,D], o: [B,H,Nq,D] (any strides); lse: [B,H,Nq] f32.
 */
export function attentionForward(q: View, k: View, v: View, o: View, lse: View, scale: number): void {
  const op = 'attentionForward';
  const s = checkQKV(op, q, k, v);
  checkView(op, 'o', o, q.shape);
  checkLse(op, 'lse', lse, s);
  if (s.b * s.h * s.nq === 0) return;
  const t = attentionTiles(s.d);
  const ops: Operand[] = [
    { name: 'q', view: q, access: 'read' },
    { name: 'k', view: k, access: 'read' },
    { name: 'v', view: v, access: 'read' },
    { name: 'o', view: o, access: 'write' },
    { name: 'lse', view: lse, access: 'write' },
  ];
  dispatchOps(`attn_fwd|d${s.d}|${tileKey(t)}|${dtypeKey(ops)}`, () => forwardSource(s.d, t, ops), ops, [Math.ceil(s.nq / t.rows), s.h, s.b], packParams(header(s, scale), ops));
}

/**
 * Gradients of attentionForward: dq, dk, dv (shapes of q, k, v; any strides) from dO and the
 * saved o and lse. Allocates one [B,H,Nq] f32 temporary (delta) and releases it after recording.
 */
export function attentionBackward(q: View, k: View, v: View, o: View, lse: View, dO: View, dq: View, dk: View, dv: View, scale: number): void {
  const op = 'attentionBackward';
  const s = checkQKV(op, q, k, v);
  checkView(op, 'o', o, q.shape);
  checkView(op, 'dO', dO, q.shape);
  checkView(op, 'dq', dq, q.shape);
  checkView(op, 'dk', dk, k.shape);
  checkView(op, 'dv', dv, v.shape);
  checkLse(op, 'lse', lse, s);
  if (s.b * s.h * (s.nq + s.nk) === 0) return;
  const rt = runtime();
  const t = attentionTiles(s.d);
  const rows = s.b * s.h * s.nq;
  const deltaBuf = rt.allocate(Math.max(rows, 1) * byteSize('f32'), 'attention-delta');
  const delta: View = { buffer: deltaBuf, dtype: 'f32', shape: [s.b, s.h, s.nq], strides: [s.h * s.nq, s.nq, 1], offset: 0 };
  try {
    const R = (name: string, view: View): Operand => ({ name, view, access: 'read' });
    const W = (name: string, view: View): Operand => ({ name, view, access: 'write' });
    if (rows > 0) {
      const dOps = [R('o', o), R('dO', dO), W('delta', delta)];
      const p = packParams(new Params().u(s.nq, s.h, s.b), dOps);
      dispatchOps(`attn_delta|d${s.d}|${dtypeKey(dOps)}`, () => deltaSource(s.d, dOps), dOps, [...grid1d(rows), 1], p);
      const qOps = [R('q', q), R('k', k), R('v', v), R('dO', dO), R('lse', lse), R('delta', delta), W('dq', dq)];
      dispatchOps(`attn_dq|d${s.d}|${tileKey(t)}|${dtypeKey(qOps)}`, () => dqSource(s.d, t, qOps), qOps, [Math.ceil(s.nq / t.rows), s.h, s.b], packParams(header(s, scale), qOps));
    }
    const kOps = [R('q', q), R('k', k), R('v', v), R('dO', dO), R('lse', lse), R('delta', delta), W('dk', dk), W('dv', dv)];
    dispatchOps(`attn_dkdv|d${s.d}|${tileKey(t)}|${dtypeKey(kOps)}`, () => dkdvSource(s.d, t, kOps), kOps, [Math.ceil(s.nk / t.rows), s.h, s.b], packParams(header(s, scale), kOps));
  } finally {
    rt.release(deltaBuf);
  }
}
