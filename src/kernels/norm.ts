/**
 * LayerNorm and RMSNorm over the last D elements of contiguous [rows, D] views.
 *
 * Forward and the input gradient are row kernels: one workgroup per row with workgroup reductions
 * from row-reduce.ts, or (short rows, chosen by tuning.ts rowPlan) one row per invocation with no
 * barriers; the same loop text serves both (row-reduce.ts RowFrame). LayerNorm's statistics are
 * two-pass (mean, then Σ(x − mean)²), matching the float64 reference rather than the
 * cancellation-prone E[x²] − E[x]²; one row per invocation merges exact per-chunk statistics in
 * one pass instead (layerNormThreadSource): as stable, and one read of x fewer. One row per
 * invocation reads and writes vec4 when the row length and the row operands' offsets allow
 * (vec4Kernel): on lavapipe that alone made the forward kernels 1.5× faster at [4096, 384].
 *
 * dweight/dbias are column sums over rows, done deterministically without atomics: a column
 * kernel gives each thread one column of one chunk of ≤ ROWS_PER_CHUNK rows (neighbouring threads
 * read neighbouring columns), writing partials [chunks, D] that reduceInto then sums over the
 * chunk axis (or, with a single chunk, straight into dweight/dbias).
 *
 * Gradients, with x̂ = (x − μ)·rstd (μ = 0 for RMSNorm) and g = dy·w:
 *   LayerNorm  dx = rstd · (g − mean(g) − x̂ · mean(g·x̂))
 *   RMSNorm    dx = rstd · (g − x̂ · mean(g·x̂))
 *   dweight = Σ_rows dy·x̂,  dbias = Σ_rows dy.
 */
import { runtime } from '../gpu/runtime.js';
import { sizeOf } from '../core/shape.js';
import { enables, fixedSubgroupSize, grid1d, type Operand } from './common.js';
import { reduceInto } from './reduce.js';
import {
  asPlan,
  type PlanArg,
  rowEnables,
  rowFrame,
  type RowPlan,
  rowsOf,
  type SubgroupFlavour,
  useSubgroups,
  vec4RowsOk,
} from './row-reduce.js';
import { type RowFamily, rowPlan } from './tuning.js';
import { uniforms, type FieldType, type UniformLayout } from './uniforms.js';
import { isContiguous, type View } from './view.js';

const ROWS_PER_CHUNK = 32;
const COLUMN_WG = 64;

function checkOperand(v: View | undefined, n: number, op: string, what: string): void {
  if (!v) return;
  if (v.dtype !== 'f32' && v.dtype !== 'f16') throw new TypeError(`${op}: ${what} must be f32 or f16, got ${v.dtype}`);
  if (!isContiguous(v) || sizeOf(v.shape) !== n)
    throw new RangeError(`${op}: ${what} must be contiguous with ${n} elements, got shape [${v.shape.join(', ')}]`);
}

function checkAll(op: string, x: View, list: [View | undefined, 'row' | 'col' | 'all', string][]): [number, number] {
  const [rows, D] = rowsOf(x, op, 'x');
  checkOperand(x, rows * D, op, 'x');
  for (const [v, kind, what] of list) checkOperand(v, kind === 'row' ? rows : kind === 'col' ? D : rows * D, op, what);
  return [rows, D];
}

/** y = (x − μ)·rstd·w + b with rstd = 1/sqrt(var_pop + eps); writes mean and rstd per row. */
export function layerNormInto(
  x: View,
  weight: View | undefined,
  bias: View | undefined,
  eps: number,
  y: View,
  mean: View,
  rstd: View,
): void {
  const op = 'layerNorm';
  const [rows, D] = checkAll(op, x, [
    [weight, 'col', 'weight'],
    [bias, 'col', 'bias'],
    [y, 'all', 'y'],
    [mean, 'row', 'mean'],
    [rstd, 'row', 'rstd'],
  ]);
  launchRows(op, operands({ x }, { w: weight, b: bias }, { y, mean, rstd }), rows, D, eps, layerNormSource);
}

/** y = x·rstd·w with rstd = 1/sqrt(mean(x²) + eps); writes rstd per row. */
export function rmsNormInto(x: View, weight: View | undefined, eps: number, y: View, rstd: View): void {
  const op = 'rmsNorm';
  const [rows, D] = checkAll(op, x, [
    [weight, 'col', 'weight'],
    [y, 'all', 'y'],
    [rstd, 'row', 'rstd'],
  ]);
  launchRows(op, operands({ x }, { w: weight }, { y, rstd }), rows, D, eps, rmsNormSource);
}

/** dx (and optionally dweight, dbias) of layerNormInto, from the saved mean and rstd. */
export function layerNormBackwardInto(
  x: View,
  weight: View | undefined,
  mean: View,
  rstd: View,
  dy: View,
  dx: View,
  dweight?: View,
  dbias?: View,
): void {
  const op = 'layerNormBackward';
  const [rows, D] = checkAll(op, x, [
    [weight, 'col', 'weight'],
    [mean, 'row', 'mean'],
    [rstd, 'row', 'rstd'],
    [dy, 'all', 'dy'],
    [dx, 'all', 'dx'],
    [dweight, 'col', 'dweight'],
    [dbias, 'col', 'dbias'],
  ]);
  inputGradient(op, true, x, weight, mean, rstd, dy, dx, rows, D);
  columnSums(op, true, x, mean, rstd, dy, dweight, dbias, rows, D);
}

/** dx (and optionally dweight) of rmsNormInto, from the saved rstd. */
export function rmsNormBackwardInto(x: View, weight: View | undefined, rstd: View, dy: View, dx: View, dweight?: View): void {
  const op = 'rmsNormBackward';
  const [rows, D] = checkAll(op, x, [
    [weight, 'col', 'weight'],
    [rstd, 'row', 'rstd'],
    [dy, 'all', 'dy'],
    [dx, 'all', 'dx'],
    [dweight, 'col', 'dweight'],
  ]);
  inputGradient(op, false, x, weight, undefined, rstd, dy, dx, rows, D);
  columnSums(op, false, x, undefined, rstd, dy, dweight, undefined, rows, D);
}

function inputGradient(
  op: string,
  ln: boolean,
  x: View,
  weight: View | undefined,
  mean: View | undefined,
  rstd: View,
  dy: View,
  dx: View,
  rows: number,
  D: number,
): void {
  launchRows(op, operands({ x, dy, rstd }, { w: weight, mean }, { dx }), rows, D, 0, (ops, plan, sg) => normGradSource(ln, ops, plan, sg));
}

/** dweight = Σ_rows dy·x̂ and dbias = Σ_rows dy (either may be absent). */
function columnSums(
  op: string,
  ln: boolean,
  x: View,
  mean: View | undefined,
  rstd: View,
  dy: View,
  dweight: View | undefined,
  dbias: View | undefined,
  rows: number,
  D: number,
): void {
  if ((!dweight && !dbias) || D === 0) return;
  const rt = runtime();
  const chunks = Math.max(1, Math.ceil(rows / ROWS_PER_CHUNK));
  const chunkLen = Math.max(1, Math.ceil(rows / chunks));
  const scratch = (v: View | undefined): View | undefined =>
    v && chunks > 1
      ? { buffer: rt.allocate(chunks * D * 4, `${op}-partials`), dtype: 'f32', shape: [chunks * D], strides: [1], offset: 0 }
      : v;
  const pw = scratch(dweight);
  const pb = scratch(dbias);
  const ops = operands({ x, dy, rstd }, { mean: ln ? mean : undefined }, { dw: pw, db: pb });
  const key = `norm-columns|${op}|${ops.map((o) => `${o.name}:${o.view.dtype}`).join(',')}`;
  const wgsl = () => columnSumsSource(ln, ops);
  const params = packParams(COLUMN_HEADER, { chunk_len: chunkLen, D, rows, chunks }, ops);
  rt.dispatch(
    { key, bindings: [...ops.map((o) => o.access), 'uniform'], wgsl },
    ops.map((o) => o.view.buffer),
    grid1d(chunks * D, COLUMN_WG),
    params,
  );
  if (chunks === 1) return;
  const layout = { outer: 1, R: chunks, inner: D, sOuter: chunks * D, sR: D, sInner: 1 };
  for (const [p, out] of [
    [pw, dweight],
    [pb, dbias],
  ] as const) {
    if (!p || !out) continue;
    reduceInto(p, layout, out, 'sum');
    rt.release(p.buffer);
  }
}

// ----------------------------------------------------------------------------------------------
// Generation helpers: operands bind in order (reads, optional reads, writes); the parameters
// are a kernel header and each operand's element offset (`<name>_offset`).

type Header = Record<string, FieldType>;
/** Row kernels: rows, row length, eps (forward only). */
const ROW_HEADER = { rows: 'u32', D: 'u32', eps: 'f32' } as const satisfies Header;
/** Column sums: rows per chunk, row length, rows, chunks. */
const COLUMN_HEADER = { chunk_len: 'u32', D: 'u32', rows: 'u32', chunks: 'u32' } as const satisfies Header;

export function operands(
  reads: Record<string, View>,
  optional: Record<string, View | undefined>,
  writes: Record<string, View | undefined>,
): Operand[] {
  const out: Operand[] = [];
  for (const [name, view] of Object.entries(reads)) out.push({ name, view, access: 'read' });
  for (const [name, view] of Object.entries(optional)) if (view) out.push({ name, view, access: 'read' });
  for (const [name, view] of Object.entries(writes)) if (view) out.push({ name, view, access: 'write' });
  return out;
}

const layouts = new Map<string, UniformLayout>();
function normUniforms(header: Header, ops: Operand[]): UniformLayout {
  const key = `${Object.keys(header).join(',')}|${ops.map((o) => o.name).join(',')}`;
  let l = layouts.get(key);
  if (!l) {
    const fields: Header = { ...header };
    for (const o of ops) fields[`${o.name}_offset`] = 'u32';
    layouts.set(key, (l = uniforms(fields)));
  }
  return l;
}

function packParams(header: Header, values: Record<string, number>, ops: Operand[]): Uint32Array {
  const all: Record<string, number> = { ...values };
  for (const o of ops) all[`${o.name}_offset`] = o.view.offset;
  return normUniforms(header, ops).pack(all);
}

/**
 * Bindings, uniforms and index helpers. With `vec4`, row and weight/bias operands are vec4 arrays
 * indexed through `<name>_at4` (offsets in vec4s); per-row statistics stay scalar (`<name>_at`).
 */
function declare(ops: Operand[], header: Header, vec4 = false): string {
  const v4 = (o: Operand) => vec4 && !STAT_OPERANDS.has(o.name);
  return [
    ...ops.map(
      (o, k) =>
        `@group(0) @binding(${k}) var<storage, ${o.access === 'write' ? 'read_write' : 'read'}> ${o.name}_buf: array<${v4(o) ? `vec4<${o.view.dtype}>` : o.view.dtype}>;`,
    ),
    normUniforms(header, ops).wgsl(ops.length),
    ...ops.map((o) =>
      v4(o)
        ? `fn ${o.name}_at4(i: u32) -> u32 { return params.${o.name}_offset / 4u + i; }`
        : `fn ${o.name}_at(i: u32) -> u32 { return params.${o.name}_offset + i; }`,
    ),
  ].join('\n');
}

function load(name: string, index: string): string {
  return `f32(${name}_buf[${name}_at(${index})])`;
}

function store(ops: Operand[], name: string, index: string, value: string): string {
  const o = ops.find((p) => p.name === name);
  if (!o) throw new Error(`norm: no operand ${name}`);
  return `${name}_buf[${name}_at(${index})] = ${o.view.dtype}(${value});`;
}

function launchRows(
  op: string,
  ops: Operand[],
  rows: number,
  D: number,
  eps: number,
  source: (ops: Operand[], plan: RowPlan, sg: SubgroupFlavour) => string,
): void {
  if (rows === 0 || D === 0) return;
  const family: RowFamily = op === 'layerNorm' || op === 'rmsNorm' ? op : 'normBackward';
  const base = rowPlan(family, rows, D);
  const plan = {
    ...base,
    vec4: vec4RowsOk(
      base,
      D,
      ops.filter((o) => !STAT_OPERANDS.has(o.name)).map((o) => o.view),
    ),
  };
  // Shared weights (RowPlan.lanes) where there are weights and the subgroup size is fixed.
  const lanes = fixedSubgroupSize();
  if (plan.vec4 && lanes && (has(ops, 'w') || has(ops, 'b'))) {
    plan.lanes = lanes;
    plan.stepsExact = (D / 4) % lanes === 0;
  }
  const sg = plan.perThread ? false : useSubgroups();
  const grid = rowFrame(plan, sg).grid(rows);
  // Where the launch and the row tile exactly, the guards go: ~8 % of an RMSNorm forward at
  // [4096, 384] on lavapipe (each guard is a masked branch per lane there).
  if (plan.lanes) plan.rowsExact = grid[0] * grid[1] * plan.wg === rows;
  const exact = `${plan.rowsExact ? 'r' : ''}${plan.stepsExact ? 's' : ''}`;
  const shape = plan.perThread ? `thread${plan.vec4 ? 'v4' : ''}${plan.lanes ? `l${plan.lanes}${exact}` : ''}` : 'wg';
  const key = `norm|${op}|${shape}${plan.wg}|sg${sg}|${ops.map((o) => `${o.name}:${o.view.dtype}`).join(',')}`;
  const params = packParams(ROW_HEADER, { rows, D, eps }, ops);
  runtime().dispatch(
    {
      key,
      bindings: [...ops.map((o) => o.access), 'uniform'],
      wgsl: () => source(ops, plan, sg),
    },
    ops.map((o) => o.view.buffer),
    grid,
    params,
  );
}

// ----------------------------------------------------------------------------------------------
// Sources (pure: also used by the WGSL snapshots in wgsl/)

const has = (ops: Operand[], name: string) => ops.some((o) => o.name === name);

/** A row kernel over row `row` (elements rb..rb + D) under a plan, `body` given the wg_* arguments. */
function rowKernel(ops: Operand[], plan: PlanArg, sg: SubgroupFlavour, body: (args: string) => string): string {
  const f = rowFrame(asPlan(plan), sg);
  return `${rowEnables(
    ops.map((o) => o.view.dtype),
    sg,
  )}${declare(ops, ROW_HEADER)}
${f.library}
@compute @workgroup_size(${f.workgroupSize})
fn main(${f.entryArgs}) {
  let row = ${f.rowIndex};
  if (row >= params.rows) { return; }
  ${f.setup}
  let D = params.D;
  let rb = row * D;
  ${body(f.args)}
}`;
}

/** LayerNorm forward over operands x, [w], [b], y, mean, rstd. */
export function layerNormSource(ops: Operand[], plan: PlanArg, sg: SubgroupFlavour): string {
  const affine = `${has(ops, 'w') ? ` * ${load('w', 'j')}` : ''}${has(ops, 'b') ? ` + ${load('b', 'j')}` : ''}`;
  if (asPlan(plan).vec4) return layerNormVec4Source(ops, plan);
  if (asPlan(plan).perThread) return layerNormThreadSource(ops, plan, affine);
  return rowKernel(
    ops,
    plan,
    sg,
    (args) => `var s_t = 0.0;
  for (var j = lid; j < D; j += WG) { s_t += ${load('x', 'rb + j')}; }
  let mu = wg_sum(s_t, ${args}) / f32(D);
  var q_t = 0.0;
  for (var j = lid; j < D; j += WG) { let d = ${load('x', 'rb + j')} - mu; q_t += d * d; }
  let r = inverseSqrt(wg_sum(q_t, ${args}) / f32(D) + params.eps);
  if (lid == 0u) { ${store(ops, 'mean', 'row', 'mu')} ${store(ops, 'rstd', 'row', 'r')} }
  for (var j = lid; j < D; j += WG) { ${store(ops, 'y', 'rb + j', `(${load('x', 'rb + j')} - mu) * r${affine}`)} }`,
  );
}

/**
 * LayerNorm forward, one row per invocation: the statistics in one pass instead of two, so x is
 * read twice, not three times (the loads are what costs on a CPU adapter). Each chunk of CHUNK
 * elements gets its exact mean and Σ(x − mean)² from registers and is merged into the running
 * (mean, M2) by Chan et al.'s pairwise update, the tail element by element (Welford): as stable as
 * the two-pass form, with no E[x²] − E[x]² cancellation.
 */
function layerNormThreadSource(ops: Operand[], plan: PlanArg, affine: string): string {
  const C = LN_CHUNK;
  const idx = Array.from({ length: C }, (_, i) => i);
  return rowKernel(
    ops,
    plan,
    false,
    () => `var n_t = 0.0;
  var mu_t = 0.0;
  var m2_t = 0.0;
  var j = 0u;
  for (; j + ${C}u <= D; j += ${C}u) {
    ${idx.map((i) => `let v${i} = ${load('x', `rb + j + ${i}u`)};`).join(' ')}
    let cm = (${idx.map((i) => `v${i}`).join(' + ')}) * ${1 / C};
    let cq = ${idx.map((i) => `(v${i} - cm) * (v${i} - cm)`).join(' + ')};
    let n_new = n_t + ${C}.0;
    let delta = cm - mu_t;
    mu_t += delta * (${C}.0 / n_new);
    m2_t += cq + delta * delta * (n_t * ${C}.0 / n_new);
    n_t = n_new;
  }
  for (; j < D; j++) {
    let v = ${load('x', 'rb + j')};
    n_t += 1.0;
    let delta = v - mu_t;
    mu_t += delta / n_t;
    m2_t += delta * (v - mu_t);
  }
  let mu = mu_t;
  let r = inverseSqrt(max(m2_t, 0.0) / f32(D) + params.eps);
  ${store(ops, 'mean', 'row', 'mu')} ${store(ops, 'rstd', 'row', 'r')}
  for (var j = 0u; j < D; j++) { ${store(ops, 'y', 'rb + j', `(${load('x', 'rb + j')} - mu) * r${affine}`)} }`,
  );
}

/** Elements per chunk of the one-pass LayerNorm statistics (layerNormThreadSource). */
const LN_CHUNK = 8;

/** Operands holding one value per row (mean, rstd): scalar arrays in every variant. */
const STAT_OPERANDS = new Set(['mean', 'rstd']);

function load4(name: string, index: string): string {
  return `vec4<f32>(${name}_buf[${name}_at4(${index})])`;
}

function store4(ops: Operand[], name: string, index: string, value: string): string {
  const o = ops.find((p) => p.name === name);
  if (!o) throw new Error(`norm: no operand ${name}`);
  return `${name}_buf[${name}_at4(${index})] = vec4<${o.view.dtype}>(${value});`;
}

/**
 * A one-row-per-invocation kernel whose row (and weight/bias) operands are vec4 arrays: `rb4` is
 * the row's first vec4, `D4` the row length in vec4s; per-row statistics stay scalar. The
 * launcher chose this only when D and every vec4 operand's offset are multiples of 4.
 */
function vec4Kernel(ops: Operand[], plan: PlanArg, body: () => string): string {
  const p = asPlan(plan);
  const f = rowFrame(p, false);
  // With shared weights every lane must reach the broadcasts, so an invocation past the last row
  // works on the last row and skips its stores (guard) instead of returning; a launch with one
  // invocation per row (rowsExact) has no such invocation.
  const head =
    p.lanes && p.rowsExact
      ? `let row = ${f.rowIndex};`
      : p.lanes
        ? `let live = ${f.rowIndex} < params.rows;
  let row = min(${f.rowIndex}, params.rows - 1u);`
        : `let row = ${f.rowIndex};
  if (row >= params.rows) { return; }`;
  return `${rowEnables(
    ops.map((o) => o.view.dtype),
    p.lanes ? 'sg' : false,
  )}${declare(ops, ROW_HEADER, true)}
${f.library}
@compute @workgroup_size(${f.workgroupSize})
fn main(${f.entryArgs}${p.lanes ? ', @builtin(subgroup_invocation_id) lane: u32' : ''}) {
  ${head}
  let D = params.D;
  let D4 = D / 4u;
  let rb4 = row * D4;
  ${body()}
}`;
}

/** A store of a vec4 kernel: skipped by the clamped extra invocations of a shared-weights plan. */
function guard(plan: PlanArg, store: string): string {
  const p = asPlan(plan);
  return p.lanes && !p.rowsExact ? `if (live) { ${store} }` : store;
}

/**
 * `for j in 0..D4 { body }` where the body reads the weight/bias vec4s at j as `w_j` / `b_j`.
 * Without lanes each invocation loads them; with lanes L (RowPlan.lanes) the loop steps by L,
 * lane l loads element j0 + l, and step t takes lane t's value by subgroupBroadcast (a register
 * shuffle on llvmpipe; its index must be a constant, so the L steps are unrolled).
 */
function weightLoop(ops: Operand[], plan: PlanArg, body: string): string {
  const names = ['w', 'b'].filter((n) => has(ops, n));
  const { lanes: L, stepsExact } = asPlan(plan);
  if (!L) return `for (var j = 0u; j < D4; j++) { ${names.map((n) => `let ${n}_j = ${load4(n, 'j')}; `).join('')}${body} }`;
  const steps = Array.from(
    { length: L },
    (_, t) =>
      `${stepsExact ? '' : `if (j0 + ${t}u < D4) `}{ let j = j0 + ${t}u; ${names.map((n) => `let ${n}_j = subgroupBroadcast(${n}_l, ${t}u); `).join('')}${body} }`,
  );
  return `for (var j0 = 0u; j0 < D4; j0 += ${L}u) {
    let jl = ${stepsExact ? 'j0 + lane' : 'min(j0 + lane, D4 - 1u)'};
    ${names.map((n) => `let ${n}_l = ${load4(n, 'jl')};`).join(' ')}
    ${steps.join('\n    ')}
  }`;
}

/**
 * LayerNorm forward, one row per invocation, vec4 access: the same one-pass statistics as
 * layerNormThreadSource with each vec4 as a chunk (its exact mean and Σ(x − mean)² merged into
 * the running pair by Chan et al.'s update), then one more read of x to write y.
 */
function layerNormVec4Source(ops: Operand[], plan: PlanArg): string {
  const affine = `${has(ops, 'w') ? ' * w_j' : ''}${has(ops, 'b') ? ' + b_j' : ''}`;
  return vec4Kernel(
    ops,
    plan,
    () => `var n_t = 0.0;
  var mu_t = 0.0;
  var m2_t = 0.0;
  for (var j = 0u; j < D4; j++) {
    let v = ${load4('x', 'rb4 + j')};
    let cm = (v.x + v.y + v.z + v.w) * 0.25;
    let dv = v - vec4<f32>(cm);
    let n_new = n_t + 4.0;
    let delta = cm - mu_t;
    mu_t += delta * (4.0 / n_new);
    m2_t += dot(dv, dv) + delta * delta * (n_t * 4.0 / n_new);
    n_t = n_new;
  }
  let mu = mu_t;
  let r = inverseSqrt(max(m2_t, 0.0) / f32(D) + params.eps);
  ${guard(plan, `${store(ops, 'mean', 'row', 'mu')} ${store(ops, 'rstd', 'row', 'r')}`)}
  ${weightLoop(ops, plan, guard(plan, store4(ops, 'y', 'rb4 + j', `(${load4('x', 'rb4 + j')} - vec4<f32>(mu)) * r${affine}`)))}`,
  );
}

/** RMSNorm forward over operands x, [w], y, rstd. */
export function rmsNormSource(ops: Operand[], plan: PlanArg, sg: SubgroupFlavour): string {
  if (asPlan(plan).vec4)
    return vec4Kernel(
      ops,
      plan,
      () => `var q = vec4<f32>(0.0);
  for (var j = 0u; j < D4; j++) { let v = ${load4('x', 'rb4 + j')}; q += v * v; }
  let r = inverseSqrt((q.x + q.y + q.z + q.w) / f32(D) + params.eps);
  ${guard(plan, store(ops, 'rstd', 'row', 'r'))}
  ${weightLoop(ops, plan, guard(plan, store4(ops, 'y', 'rb4 + j', `${load4('x', 'rb4 + j')} * r${has(ops, 'w') ? ' * w_j' : ''}`)))}`,
    );
  return rowKernel(
    ops,
    plan,
    sg,
    (args) => `var q_t = 0.0;
  for (var j = lid; j < D; j += WG) { let v = ${load('x', 'rb + j')}; q_t += v * v; }
  let r = inverseSqrt(wg_sum(q_t, ${args}) / f32(D) + params.eps);
  if (lid == 0u) { ${store(ops, 'rstd', 'row', 'r')} }
  for (var j = lid; j < D; j += WG) { ${store(ops, 'y', 'rb + j', `${load('x', 'rb + j')} * r${has(ops, 'w') ? ` * ${load('w', 'j')}` : ''}`)} }`,
  );
}

/** dx of LayerNorm (ln) or RMSNorm over operands x, dy, rstd, [w], [mean], dx. */
export function normGradSource(ln: boolean, ops: Operand[], plan: PlanArg, sg: SubgroupFlavour): string {
  if (asPlan(plan).vec4) {
    const g4 = `${load4('dy', 'rb4 + j')}${has(ops, 'w') ? ' * w_j' : ''}`;
    const xh4 = `(${load4('x', 'rb4 + j')}${ln ? ' - vec4<f32>(mu)' : ''}) * r`;
    return vec4Kernel(
      ops,
      plan,
      () => `let r = ${load('rstd', 'row')};
  ${ln ? `let mu = ${load('mean', 'row')};` : ''}
  var acc = vec2<f32>(0.0);
  ${weightLoop(ops, plan, `let g = ${g4}; acc += vec2<f32>(g.x + g.y + g.z + g.w, dot(g, ${xh4}));`)}
  let sums = acc / f32(D);
  ${weightLoop(ops, plan, `let g = ${g4}; ${guard(plan, store4(ops, 'dx', 'rb4 + j', `r * (g${ln ? ' - vec4<f32>(sums.x)' : ''} - ${xh4} * sums.y)`))}`)}`,
    );
  }
  const g = `${load('dy', 'rb + j')}${has(ops, 'w') ? ` * ${load('w', 'j')}` : ''}`;
  const xh = `(${load('x', 'rb + j')}${ln ? ' - mu' : ''}) * r`;
  return rowKernel(
    ops,
    plan,
    sg,
    (args) => `let r = ${load('rstd', 'row')};
  ${ln ? `let mu = ${load('mean', 'row')};` : ''}
  var acc = vec2<f32>(0.0);
  for (var j = lid; j < D; j += WG) { let g = ${g}; acc += vec2<f32>(g, g * ${xh}); }
  let sums = wg_sum2(acc, ${args}) / f32(D);
  for (var j = lid; j < D; j += WG) {
    let g = ${g};
    ${store(ops, 'dx', 'rb + j', `r * (g${ln ? ' - sums.x' : ''} - ${xh} * sums.y)`)}
  }`,
  );
}

/** Column partial sums of dy·x̂ (dw) and dy (db) over one chunk of rows per thread. */
export function columnSumsSource(ln: boolean, ops: Operand[]): string {
  return `${enables(ops.map((o) => o.view.dtype))}${declare(ops, COLUMN_HEADER)}
const WG = ${COLUMN_WG}u;
@compute @workgroup_size(${COLUMN_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * (nwg.x * WG);
  let D = params.D;
  if (t >= params.chunks * D) { return; }
  let j = t % D;
  let c = t / D;
  let r0 = c * params.chunk_len;
  let r1 = min(params.rows, r0 + params.chunk_len);
  var sw = 0.0;
  var sb = 0.0;
  for (var row = r0; row < r1; row++) {
    let g = ${load('dy', 'row * D + j')};
    sw += g * (${load('x', 'row * D + j')}${ln ? ` - ${load('mean', 'row')}` : ''}) * ${load('rstd', 'row')};
    sb += g;
  }
  ${has(ops, 'dw') ? store(ops, 'dw', 't', 'sw') : ''}
  ${has(ops, 'db') ? store(ops, 'db', 't', 'sb') : ''}
}`;
}
