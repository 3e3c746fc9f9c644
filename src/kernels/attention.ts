/**
 * Fused scaled-dot-product attention, forward and backward, in the flash-attention style: scores
 * exist only in registers, a few keys (or queries) at a time, so memory is linear in N.
 *
 *   forward    one workgroup per (query block, head, batch); a thread owns one query row and keeps
 *              its output row, running max and running sum in registers (online softmax). Saves
 *              lse = log Σ_j exp(scale·q·k_j) per row.
 *   backward   delta = rowsum(dO ∘ O) (one thread per row), then
 *              dQ    one thread per query row, looping over keys:    dQ = scale·dS·K
 *              dK/dV one thread per key row, looping over queries:   dV = Pᵀ·dO, dK = scale·dSᵀ·Q
 *              with P = exp(scale·q·k − lse) recomputed and dS = P∘(dO·vᵀ − delta). Every output
 *              element is written by exactly one thread: deterministic, no atomics.
 *
 * The loop over the other operand goes `unroll` rows per step, unrolled, so that a step's scores
 * stay in registers and each row accumulator is read and written once per step. Those rows come
 * either straight from global memory ('stream': all threads of a workgroup read the same row, a
 * broadcast; no barriers) or from tiles staged in workgroup memory ('stage'). On lavapipe
 * streaming wins: llvmpipe runs a workgroup with barriers as coroutines whose state lives in
 * memory, and staged tiles are ordinary memory there anyway.
 *
 * Operands are [B, H, N, D] views with any strides and offsets (e.g. q/k/v sliced out of a fused
 * [B, N, 3, H, D] projection), f32 or f16 (f32 accumulation). Rows are held as vec4 registers
 * (D padded to a multiple of 4 with zeros), so kernels are specialised on D, the configuration
 * and every operand dtype; all of it is in the pipeline key.
 */
import { runtime } from '../gpu/runtime.js';
import type { DType } from '../tensor/dtype.js';
import { enables, FLAT_INDEX, grid1d, Params, paramsDecl, WG } from './common.js';
import type { View } from './view.js';

/** Largest head dim the register rows are generated for. */
export const MAX_HEAD_DIM = 256;

export interface AttentionConfig {
  /** Threads per workgroup. */
  rows: number;
  /** Rows each thread owns (queries in forward and dQ, keys in dK/dV); each streamed row is reused for all of them. */
  perThread: number;
  /** Rows of the other operand per unrolled step. */
  unroll: number;
  /** 0: stream the other operand from global memory; n > 0: stage n rows at a time in workgroup memory (a multiple of `unroll`). */
  stage: number;
}

export interface AttentionOptions {
  /** Overrides the per-adapter choice (benchmarks, tests of every variant). */
  config?: AttentionConfig;
}

/**
 * Per-adapter choice. Lavapipe was measured (bench/attention.ts); the staged configuration for
 * other adapters is a starting point that has not been measured on a GPU yet.
 */
export function chooseAttentionConfig(d: number): AttentionConfig {
  const rt = runtime();
  const s = rt.adapterSummary;
  const name = [s.vendor, s.architecture, s.device, s.description].join(' ').toLowerCase();
  if (/llvmpipe|lavapipe|swiftshader/.test(name)) return { rows: 32, perThread: 4, unroll: 2, stage: 0 };
  const unroll = 4;
  let stage = 32;
  while (stage > unroll && stagedBytes(d, stage) > rt.limits.maxComputeWorkgroupStorageSize) stage /= 2;
  return { rows: 64, perThread: 1, unroll, stage };
}

/** Workgroup memory of a staged kernel: two vec4 row tiles plus two per-row scalars. */
export function stagedBytes(d: number, stage: number): number {
  return stage * (2 * Math.ceil(d / 4) * 16 + 8);
}

// ---- parameters: a header [Nq, Nk, scale·log2(e), scale], then per operand [sB, sH, sN, sD, offset] ----

const HEADER = 4;
const WORDS = 5;

interface Operand {
  name: string;
  view: View;
  access: 'read' | 'write';
  /** Rows are read/written as whole vec4s (contiguous D, multiple of 4, every stride and the offset too). */
  v4: boolean;
}

function vec4Able(v: View): boolean {
  const r = v.shape.length;
  return (
    r === 4 &&
    v.shape[3] % 4 === 0 &&
    v.strides[3] === 1 &&
    v.offset % 4 === 0 &&
    v.strides.every((s, i) => i === 3 || v.shape[i] === 1 || s % 4 === 0)
  );
}

function packParams(header: Params, ops: Operand[]): Uint32Array {
  const p = header.pad(HEADER);
  for (const { view: v } of ops) {
    // 3-D operands (lse, delta) have no D stride; size-1 dims never move. u32 wrap-around keeps negative strides exact.
    const s = (v.shape.length === 4 ? v.strides : [...v.strides, 0]).map((x, i) => (v.shape[i] === 1 ? 0 : x));
    p.u(s[0], s[1], s[2], s[3], v.offset);
  }
  return p.build();
}

function declarations(ops: Operand[]): string {
  const lines = ops.map(
    (o, i) => `@group(0) @binding(${i}) var<storage, ${o.access === 'read' ? 'read' : 'read_write'}> ${o.name}_buf: array<${o.v4 ? `vec4<${o.view.dtype}>` : o.view.dtype}>;`,
  );
  return `${enables(ops.map((o) => o.view.dtype))}${lines.join('\n')}\n${paramsDecl(ops.length, Math.ceil((HEADER + WORDS * ops.length) / 4))}`;
}

/** Per-operand base offset for this (b, h) and its row / element strides. */
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

/** vec4 number i of the row starting at element `rb` of operand `o` (zeros past D). */
function readVec(o: Operand, rb: string, i: number, d: number): string {
  if (o.v4) return `vec4<f32>(${o.name}_buf[${rb} / 4u + ${i}u])`;
  const c = [0, 1, 2, 3].map((k) => (4 * i + k < d ? `f32(${o.name}_buf[${rb} + ${4 * i + k}u * ${o.name}_sd])` : '0.0'));
  return `vec4<f32>(${c.join(', ')})`;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** The rows this thread owns: row{r}, valid{r}. */
function rowLets(cfg: AttentionConfig, limit: string): string {
  return range(cfg.perThread)
    .map((r) => `  let row${r} = wid.x * ${cfg.rows * cfg.perThread}u + ${r * cfg.rows}u + lid;\n  let valid${r} = row${r} < ${limit};`)
    .join('\n');
}

/** Loads this thread's rows of `o` into registers `${reg}${r}_${i}` (zeros when invalid). */
function loadRows(o: Operand, reg: string, cfg: AttentionConfig, d: number, scale = ''): string {
  const dv4 = Math.ceil(d / 4);
  return range(cfg.perThread)
    .map(
      (r) => `${range(dv4).map((i) => `  var ${reg}${r}_${i} = vec4<f32>(0.0);`).join('\n')}
  if (valid${r}) {
    let rb = ${o.name}_base + row${r} * ${o.name}_sn;
${range(dv4).map((i) => `    ${reg}${r}_${i} = ${readVec(o, 'rb', i, d)}${scale};`).join('\n')}
  }`,
    )
    .join('\n');
}

function zeroRows(reg: string, cfg: AttentionConfig, d: number): string {
  return range(cfg.perThread)
    .flatMap((r) => range(Math.ceil(d / 4)).map((i) => `  var ${reg}${r}_${i} = vec4<f32>(0.0);`))
    .join('\n');
}

/** Stores registers `${reg}${r}_i` · factor(r) into this thread's valid rows of `o`. */
function storeRows(o: Operand, reg: string, cfg: AttentionConfig, d: number, factor: (r: number) => string): string {
  const t = o.view.dtype;
  return range(cfg.perThread)
    .map((r) => {
      const lines = o.v4
        ? range(d / 4).map((i) => `    ${o.name}_buf[rb / 4u + ${i}u] = vec4<${t}>(${reg}${r}_${i} * ${factor(r)});`)
        : range(d).map((c) => `    ${o.name}_buf[rb + ${c}u * ${o.name}_sd] = ${t}(${reg}${r}_${c >> 2}[${c & 3}] * ${factor(r)});`);
      return `  if (valid${r}) {\n    let rb = ${o.name}_base + row${r} * ${o.name}_sn;\n${lines.join('\n')}\n  }`;
    })
    .join('\n');
}

/**
 * The loop over the other operand's rows (keys for forward/dQ, queries for dK/dV), `unroll` rows
 * per step. Each step first binds the step's rows as `${name}s${u}_${i}` (vec4 i of step row u) and
 * per-row scalars as `${name}s${u}`, with `ok_${u}` telling whether row u exists; `body` then
 * uses those names.
 */
interface Stream {
  /** Streamed [B, H, N, D] operands. */
  rows: Operand[];
  /** Streamed [B, H, N] operands, with a factor applied on load. */
  scalars: { op: Operand; factor: string }[];
  limit: string;
}

function streamLoop(st: Stream, cfg: AttentionConfig, d: number, body: string): string {
  const dv4 = Math.ceil(d / 4);
  const U = cfg.unroll;
  const L = st.limit;
  const oks = range(U).map((u) => `let ok_${u} = base + ${u}u < ${L};`);
  if (cfg.stage === 0) {
    const lets = range(U).flatMap((u) => [
      `let r_${u} = min(base + ${u}u, ${L} - 1u);`,
      ...st.rows.flatMap((o) => [`let ${o.name}_r${u} = ${o.name}_base + r_${u} * ${o.name}_sn;`, ...range(dv4).map((i) => `let ${o.name}s${u}_${i} = ${readVec(o, `${o.name}_r${u}`, i, d)};`)]),
      ...st.scalars.map(({ op, factor }) => `let ${op.name}s${u} = f32(${op.name}_buf[${op.name}_base + r_${u} * ${op.name}_sn])${factor};`),
    ]);
    return `  for (var base = 0u; base < ${L}; base += ${U}u) {
    ${[...oks, ...lets].join('\n    ')}
${body}
  }`;
  }
  const S = cfg.stage;
  const tileLoads = st.rows.map((o) => {
    const comps = [0, 1, 2, 3].map((k) => `select(0.0, f32(${o.name}_buf[rb + min(c + ${k}u, ${d - 1}u) * ${o.name}_sd]), c + ${k}u < ${d}u)`);
    const value = o.v4 ? `vec4<f32>(${o.name}_buf[rb / 4u + e % ${dv4}u])` : `vec4<f32>(${comps.join(', ')})`;
    return `    for (var e = lid; e < ${S * dv4}u; e += T) {
      let j = e / ${dv4}u;
      let c = (e % ${dv4}u) * 4u;
      var val = vec4<f32>(0.0);
      if (kt + j < ${L}) {
        let rb = ${o.name}_base + (kt + j) * ${o.name}_sn;
        val = ${value};
      }
      ${o.name}_tile[e] = val;
    }`;
  });
  const scalarLoads = st.scalars.map(
    ({ op, factor }) => `    for (var e = lid; e < ${S}u; e += T) {
      var val = 0.0;
      if (kt + e < ${L}) { val = f32(${op.name}_buf[${op.name}_base + (kt + e) * ${op.name}_sn])${factor}; }
      ${op.name}_tile[e] = val;
    }`,
  );
  const lets = range(U).flatMap((u) => [
    ...st.rows.flatMap((o) => range(dv4).map((i) => `let ${o.name}s${u}_${i} = ${o.name}_tile[(j0 + ${u}u) * ${dv4}u + ${i}u];`)),
    ...st.scalars.map(({ op }) => `let ${op.name}s${u} = ${op.name}_tile[j0 + ${u}u];`),
  ]);
  return `  for (var kt = 0u; kt < ${L}; kt += ${S}u) {
    workgroupBarrier();
${[...tileLoads, ...scalarLoads].join('\n')}
    workgroupBarrier();
    for (var j0 = 0u; j0 < min(${S}u, ${L} - kt); j0 += ${U}u) {
      let base = kt + j0;
      ${[...oks, ...lets].join('\n      ')}
${body}
    }
  }`;
}

/** Workgroup declarations for a staged loop. */
function tileDecls(st: Stream, cfg: AttentionConfig, d: number): string {
  if (cfg.stage === 0) return '';
  const dv4 = Math.ceil(d / 4);
  return [
    ...st.rows.map((o) => `var<workgroup> ${o.name}_tile: array<vec4<f32>, ${cfg.stage * dv4}>;`),
    ...st.scalars.map(({ op }) => `var<workgroup> ${op.name}_tile: array<f32, ${cfg.stage}>;`),
  ].join('\n');
}

/** Σ over the row of a_i · b_i (register prefixes), in two accumulators for instruction-level parallelism. */
function dot(a: string, b: string, d: number): string {
  const acc = ['', ''];
  for (let i = 0; i < Math.ceil(d / 4); i++) acc[i & 1] = acc[i & 1] ? `fma(${a}_${i}, ${b}_${i}, ${acc[i & 1]})` : `${a}_${i} * ${b}_${i}`;
  return `dot(${acc[1] ? `${acc[0]} + ${acc[1]}` : acc[0]}, vec4<f32>(1.0))`;
}

/** reg_i = start(reg_i) + Σ_u w(u) · b(u)_i, one expression per register. */
function accumulate(reg: string, start: (r: string) => string, w: (u: number) => string, b: (u: number) => string, U: number, d: number): string {
  return range(Math.ceil(d / 4))
    .map((i) => {
      let e = start(`${reg}_${i}`);
      for (let u = 0; u < U; u++) e = `fma(vec4<f32>(${w(u)}), ${b(u)}_${i}, ${e})`;
      return `    ${reg}_${i} = ${e};`;
    })
    .join('\n');
}

const MAIN = (cfg: AttentionConfig) => `const T = ${cfg.rows}u;
@compute @workgroup_size(${cfg.rows})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let h = wid.y;
  let b = wid.z;
  let Nq = pu(0u);
  let Nk = pu(1u);
  let sl2 = pf(2u);
  let scale = pf(3u);`;

function forwardSource(d: number, cfg: AttentionConfig, ops: Operand[]): string {
  const [q, k, v, o, lse] = ops;
  const U = cfg.unroll;
  const st: Stream = { rows: [k, v], scalars: [], limit: 'Nk' };
  const body = range(cfg.perThread)
    .map((r) => {
      const s = range(U).map((u) => `    let s${r}_${u} = select(-1.0e30, ${dot(`qr${r}`, `ks${u}`, d)}, ok_${u});`);
      const mt = range(U).reduce((e, u) => `max(${e}, s${r}_${u})`, `m${r}`);
      return `${s.join('\n')}
    let mt${r} = ${mt};
    let alpha${r} = exp2(m${r} - mt${r});
${range(U).map((u) => `    let p${r}_${u} = exp2(s${r}_${u} - mt${r});`).join('\n')}
    l${r} = l${r} * alpha${r} + ${range(U).map((u) => `p${r}_${u}`).join(' + ')};
${accumulate(`acc${r}`, (x) => `${x} * alpha${r}`, (u) => `p${r}_${u}`, (u) => `vs${u}`, U, d)}
    m${r} = mt${r};`;
    })
    .join('\n');
  return `${declarations(ops)}
${tileDecls(st, cfg, d)}
${MAIN(cfg)}
${operandLets(ops)}
${rowLets(cfg, 'Nq')}
  // q carries scale·log2(e): scores come out in log2 units, ready for exp2.
${loadRows(q, 'qr', cfg, d, ' * sl2')}
${zeroRows('acc', cfg, d)}
${range(cfg.perThread).map((r) => `  var m${r} = -3.0e38;\n  var l${r} = 0.0;`).join('\n')}
${streamLoop(st, cfg, d, body)}
${storeRows(o, 'acc', cfg, d, (r) => `(1.0 / l${r})`)}
${range(cfg.perThread).map((r) => `  if (valid${r}) { lse_buf[lse_base + row${r} * lse_sn] = (m${r} + log2(l${r})) * ${Math.LN2}; }`).join('\n')}
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

function dqSource(d: number, cfg: AttentionConfig, ops: Operand[]): string {
  const [q, k, v, dO, , , dq] = ops;
  const U = cfg.unroll;
  const st: Stream = { rows: [k, v], scalars: [], limit: 'Nk' };
  const body = range(cfg.perThread)
    .map((r) => {
      const lines = range(U).flatMap((u) => [
        `    let p${r}_${u} = select(0.0, exp2(${dot(`qr${r}`, `ks${u}`, d)} - lse${r}), ok_${u});`,
        `    let ds${r}_${u} = p${r}_${u} * (${dot(`gr${r}`, `vs${u}`, d)} - dlt${r});`,
      ]);
      return `${lines.join('\n')}\n${accumulate(`acc${r}`, (x) => x, (u) => `ds${r}_${u}`, (u) => `ks${u}`, U, d)}`;
    })
    .join('\n');
  return `${declarations(ops)}
${tileDecls(st, cfg, d)}
${MAIN(cfg)}
${operandLets(ops)}
${rowLets(cfg, 'Nq')}
${loadRows(q, 'qr', cfg, d, ' * sl2')}
${loadRows(dO, 'gr', cfg, d)}
${range(cfg.perThread)
  .map(
    (r) => `  var lse${r} = 0.0;
  var dlt${r} = 0.0;
  if (valid${r}) {
    lse${r} = lse_buf[lse_base + row${r} * lse_sn] * ${Math.LOG2E};
    dlt${r} = delta_buf[delta_base + row${r} * delta_sn];
  }`,
  )
  .join('\n')}
${zeroRows('acc', cfg, d)}
${streamLoop(st, cfg, d, body)}
${storeRows(dq, 'acc', cfg, d, () => 'scale')}
}`;
}

function dkdvSource(d: number, cfg: AttentionConfig, ops: Operand[]): string {
  const [q, k, v, dO, lse, delta, dk, dv] = ops;
  const U = cfg.unroll;
  const st: Stream = { rows: [q, dO], scalars: [{ op: lse, factor: ` * ${Math.LOG2E}` }, { op: delta, factor: '' }], limit: 'Nq' };
  const body = range(cfg.perThread)
    .map((r) => {
      const lines = range(U).flatMap((u) => [
        `    let p${r}_${u} = select(0.0, exp2(${dot(`kr${r}`, `qs${u}`, d)} - lses${u}), ok_${u});`,
        `    let ds${r}_${u} = p${r}_${u} * (${dot(`vr${r}`, `dOs${u}`, d)} - deltas${u});`,
      ]);
      return `${lines.join('\n')}
${accumulate(`dv${r}`, (x) => x, (u) => `p${r}_${u}`, (u) => `dOs${u}`, U, d)}
${accumulate(`dk${r}`, (x) => x, (u) => `ds${r}_${u}`, (u) => `qs${u}`, U, d)}`;
    })
    .join('\n');
  return `${declarations(ops)}
${tileDecls(st, cfg, d)}
${MAIN(cfg)}
${operandLets(ops)}
${rowLets(cfg, 'Nk')}
  // k carries scale·log2(e) so that k·q is the score in log2 units.
${loadRows(k, 'kr', cfg, d, ' * sl2')}
${loadRows(v, 'vr', cfg, d)}
${zeroRows('dk', cfg, d)}
${zeroRows('dv', cfg, d)}
${streamLoop(st, cfg, d, body)}
${storeRows(dk, 'dk', cfg, d, () => 'scale')}
${storeRows(dv, 'dv', cfg, d, () => '1.0')}
}`;
}

interface Dims {
  b: number;
  h: number;
  nq: number;
  nk: number;
  d: number;
}

function checkView(op: string, name: string, v: View, shape: readonly number[]): void {
  if (v.shape.length !== shape.length || v.shape.some((s, i) => s !== shape[i])) {
    throw new RangeError(`${op}: ${name} must have shape [${shape.join(', ')}], got [${v.shape.join(', ')}]`);
  }
  if (v.dtype !== 'f32' && v.dtype !== 'f16') throw new TypeError(`${op}: ${name} must be f32 or f16, got ${v.dtype}`);
}

function checkInputs(op: string, q: View, k: View, v: View, lse: View): Dims {
  if (q.shape.length !== 4) throw new RangeError(`${op}: q must be [B, H, Nq, D], got [${q.shape.join(', ')}]`);
  const [b, h, nq, d] = q.shape;
  const nk = k.shape[2] ?? 0;
  checkView(op, 'q', q, [b, h, nq, d]);
  checkView(op, 'k', k, [b, h, nk, d]);
  checkView(op, 'v', v, [b, h, nk, d]);
  if (d < 1 || d > MAX_HEAD_DIM) throw new RangeError(`${op}: head dim ${d} must be in [1, ${MAX_HEAD_DIM}]`);
  if (nk === 0 && nq > 0) throw new RangeError(`${op}: attention over zero keys is undefined (k has Nk = 0)`);
  checkView(op, 'lse', lse, [b, h, nq]);
  if (lse.dtype !== 'f32') throw new TypeError(`${op}: lse must be f32, got ${lse.dtype}`);
  return { b, h, nq, nk, d };
}

function resolveConfig(op: string, d: number, opts: AttentionOptions): AttentionConfig {
  const cfg = opts.config ?? chooseAttentionConfig(d);
  const { rows, perThread, unroll, stage } = cfg;
  const bad =
    !Number.isInteger(rows) || rows < 1 || rows > runtime().limits.maxComputeInvocationsPerWorkgroup ||
    !Number.isInteger(perThread) || perThread < 1 || perThread > 16 ||
    !Number.isInteger(unroll) || unroll < 1 || unroll > 32 ||
    !Number.isInteger(stage) || stage < 0 || stage % unroll !== 0 ||
    stagedBytes(d, stage) > runtime().limits.maxComputeWorkgroupStorageSize;
  if (bad) throw new RangeError(`${op}: invalid configuration ${JSON.stringify(cfg)} for head dim ${d}`);
  return cfg;
}

const header = (s: Dims, scale: number) => new Params().u(s.nq, s.nk).f(scale * Math.LOG2E, scale);
const cfgKey = (c: AttentionConfig) => `t${c.rows}r${c.perThread}u${c.unroll}s${c.stage}`;
/** Operand dtypes and vec4 access, the rest of what the WGSL is specialised on. */
const opsKey = (ops: Operand[]) => ops.map((o) => `${o.view.dtype}${o.v4 ? '/4' : ''}`).join(',');
const R = (name: string, view: View, v4 = vec4Able(view)): Operand => ({ name, view, access: 'read', v4 });
const W = (name: string, view: View, v4 = vec4Able(view)): Operand => ({ name, view, access: 'write', v4 });

function dispatchOps(key: string, wgsl: () => string, ops: Operand[], groups: [number, number, number], params: Uint32Array): void {
  runtime().dispatch({ key, bindings: [...ops.map((o) => o.access), 'uniform'], wgsl }, ops.map((o) => o.view.buffer), groups, params);
}

/**
 * o = softmax(scale · q kᵀ) v and lse = log Σ_j exp(scale · q·k_j), per (batch, head, query).
 * q: [B,H,Nq,D], k, v: [B,H,Nk,D], o: [B,H,Nq,D] (any strides); lse: [B,H,Nq] f32.
 */
export function attentionForward(q: View, k: View, v: View, o: View, lse: View, scale: number, opts: AttentionOptions = {}): void {
  const op = 'attentionForward';
  const s = checkInputs(op, q, k, v, lse);
  checkView(op, 'o', o, q.shape);
  if (s.b * s.h * s.nq === 0) return;
  const cfg = resolveConfig(op, s.d, opts);
  const ops = [R('q', q), R('k', k), R('v', v), W('o', o), W('lse', lse, false)];
  const groups: [number, number, number] = [Math.ceil(s.nq / (cfg.rows * cfg.perThread)), s.h, s.b];
  dispatchOps(`attn_fwd|d${s.d}|${cfgKey(cfg)}|${opsKey(ops)}`, () => forwardSource(s.d, cfg, ops), ops, groups, packParams(header(s, scale), ops));
}

/**
 * Gradients of attentionForward: dq, dk, dv (shapes of q, k, v; any strides) from dO and the
 * saved o and lse. Allocates one [B,H,Nq] f32 temporary (delta) and releases it after recording.
 */
export function attentionBackward(q: View, k: View, v: View, o: View, lse: View, dO: View, dq: View, dk: View, dv: View, scale: number, opts: AttentionOptions = {}): void {
  const op = 'attentionBackward';
  const s = checkInputs(op, q, k, v, lse);
  for (const [name, t, like] of [['o', o, q], ['dO', dO, q], ['dq', dq, q], ['dk', dk, k], ['dv', dv, v]] as const) checkView(op, name, t, like.shape);
  if (s.b * s.h * (s.nq + s.nk) === 0) return;
  const cfg = resolveConfig(op, s.d, opts);
  const rt = runtime();
  const rows = s.b * s.h * s.nq;
  const deltaBuf = rt.allocate(Math.max(rows, 1) * 4, 'attention-delta');
  const delta: View = { buffer: deltaBuf, dtype: 'f32', shape: [s.b, s.h, s.nq], strides: [s.h * s.nq, s.nq, 1], offset: 0 };
  try {
    if (rows > 0) {
      const dOps = [R('o', o, false), R('dO', dO, false), W('delta', delta, false)];
      dispatchOps(`attn_delta|d${s.d}|${opsKey(dOps)}`, () => deltaSource(s.d, dOps), dOps, [...grid1d(rows), 1], packParams(new Params().u(s.nq, s.h, s.b), dOps));
      const qOps = [R('q', q), R('k', k), R('v', v), R('dO', dO), R('lse', lse, false), R('delta', delta, false), W('dq', dq)];
      const groups: [number, number, number] = [Math.ceil(s.nq / (cfg.rows * cfg.perThread)), s.h, s.b];
      dispatchOps(`attn_dq|d${s.d}|${cfgKey(cfg)}|${opsKey(qOps)}`, () => dqSource(s.d, cfg, qOps), qOps, groups, packParams(header(s, scale), qOps));
    }
    const kOps = [R('q', q), R('k', k), R('v', v), R('dO', dO), R('lse', lse, false), R('delta', delta, false), W('dk', dk), W('dv', dv)];
    const groups: [number, number, number] = [Math.ceil(s.nk / (cfg.rows * cfg.perThread)), s.h, s.b];
    dispatchOps(`attn_dkdv|d${s.d}|${cfgKey(cfg)}|${opsKey(kOps)}`, () => dkdvSource(s.d, cfg, kOps), kOps, groups, packParams(header(s, scale), kOps));
  } finally {
    rt.release(deltaBuf);
  }
}
