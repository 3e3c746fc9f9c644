/**
 * LayerNorm and RMSNorm over the last D elements of contiguous [rows, D] views.
 *
 * Forward and the input gradient are row kernels (one workgroup per row, workgroup reductions
 * from reduce.ts). LayerNorm's statistics are two-pass (mean, then Σ(x − mean)²), matching the
 * float64 reference rather than the cancellation-prone E[x²] − E[x]².
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
import type { DType } from '../core/dtype.js';
import { sizeOf } from '../core/shape.js';
import { enables, grid1d, Params, paramsDecl } from './common.js';
import { redArgs, reduceInto, reductionLibrary, ROW_INDEX, rowEnables, rowEntryArgs, rowGrid, rowSetup, rowWorkgroupSize, useSubgroups } from './reduce.js';
import { isContiguous, type View } from './view.js';

const ROWS_PER_CHUNK = 32;
const COLUMN_WG = 64;

interface Operand {
  name: string;
  view: View;
  write: boolean;
}

/** rows × D of a contiguous float view. */
function rowsOf(v: View, op: string): [number, number] {
  if (!isContiguous(v)) throw new RangeError(`${op}: x must be contiguous, got strides [${v.strides.join(', ')}] for shape [${v.shape.join(', ')}]`);
  const D = v.shape.length ? v.shape[v.shape.length - 1] : 1;
  return [D === 0 ? 0 : sizeOf(v.shape) / D, D];
}

function checkOperand(v: View | undefined, n: number, op: string, what: string): void {
  if (!v) return;
  if (v.dtype !== 'f32' && v.dtype !== 'f16') throw new TypeError(`${op}: ${what} must be f32 or f16, got ${v.dtype}`);
  if (!isContiguous(v) || sizeOf(v.shape) !== n) throw new RangeError(`${op}: ${what} must be contiguous with ${n} elements, got shape [${v.shape.join(', ')}]`);
}

function checkAll(op: string, x: View, list: [View | undefined, 'row' | 'col' | 'all', string][]): [number, number] {
  const [rows, D] = rowsOf(x, op);
  checkOperand(x, rows * D, op, 'x');
  for (const [v, kind, what] of list) checkOperand(v, kind === 'row' ? rows : kind === 'col' ? D : rows * D, op, what);
  return [rows, D];
}

/** y = (x − μ)·rstd·w + b with rstd = 1/sqrt(var_pop + eps); writes mean and rstd per row. */
export function layerNormInto(x: View, weight: View | undefined, bias: View | undefined, eps: number, y: View, mean: View, rstd: View): void {
  const op = 'layerNorm';
  const [rows, D] = checkAll(op, x, [[weight, 'col', 'weight'], [bias, 'col', 'bias'], [y, 'all', 'y'], [mean, 'row', 'mean'], [rstd, 'row', 'rstd']]);
  const ops = operands({ x }, { w: weight, b: bias }, { y, mean, rstd });
  const L = (n: string, i: string) => load(n, i);
  const affine = `${weight ? ` * ${L('w', 'j')}` : ''}${bias ? ` + ${L('b', 'j')}` : ''}`;
  launchRows(op, ops, rows, D, eps, (args) => `var s_t = 0.0;
  for (var j = lid; j < D; j += WG) { s_t += ${L('x', 'rb + j')}; }
  let mu = wg_sum(s_t, ${args}) / f32(D);
  var q_t = 0.0;
  for (var j = lid; j < D; j += WG) { let d = ${L('x', 'rb + j')} - mu; q_t += d * d; }
  let r = inverseSqrt(wg_sum(q_t, ${args}) / f32(D) + pf(2u));
  if (lid == 0u) { ${store(ops, 'mean', 'row', 'mu')} ${store(ops, 'rstd', 'row', 'r')} }
  for (var j = lid; j < D; j += WG) { ${store(ops, 'y', 'rb + j', `(${L('x', 'rb + j')} - mu) * r${affine}`)} }`);
}

/** y = x·rstd·w with rstd = 1/sqrt(mean(x²) + eps); writes rstd per row. */
export function rmsNormInto(x: View, weight: View | undefined, eps: number, y: View, rstd: View): void {
  const op = 'rmsNorm';
  const [rows, D] = checkAll(op, x, [[weight, 'col', 'weight'], [y, 'all', 'y'], [rstd, 'row', 'rstd']]);
  const ops = operands({ x }, { w: weight }, { y, rstd });
  const L = (n: string, i: string) => load(n, i);
  launchRows(op, ops, rows, D, eps, (args) => `var q_t = 0.0;
  for (var j = lid; j < D; j += WG) { let v = ${L('x', 'rb + j')}; q_t += v * v; }
  let r = inverseSqrt(wg_sum(q_t, ${args}) / f32(D) + pf(2u));
  if (lid == 0u) { ${store(ops, 'rstd', 'row', 'r')} }
  for (var j = lid; j < D; j += WG) { ${store(ops, 'y', 'rb + j', `${L('x', 'rb + j')} * r${weight ? ` * ${L('w', 'j')}` : ''}`)} }`);
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
  const [rows, D] = checkAll(op, x, [[weight, 'col', 'weight'], [mean, 'row', 'mean'], [rstd, 'row', 'rstd'], [dy, 'all', 'dy'], [dx, 'all', 'dx'], [dweight, 'col', 'dweight'], [dbias, 'col', 'dbias']]);
  inputGradient(op, true, x, weight, mean, rstd, dy, dx, rows, D);
  columnSums(op, true, x, mean, rstd, dy, dweight, dbias, rows, D);
}

/** dx (and optionally dweight) of rmsNormInto, from the saved rstd. */
export function rmsNormBackwardInto(x: View, weight: View | undefined, rstd: View, dy: View, dx: View, dweight?: View): void {
  const op = 'rmsNormBackward';
  const [rows, D] = checkAll(op, x, [[weight, 'col', 'weight'], [rstd, 'row', 'rstd'], [dy, 'all', 'dy'], [dx, 'all', 'dx'], [dweight, 'col', 'dweight']]);
  inputGradient(op, false, x, weight, undefined, rstd, dy, dx, rows, D);
  columnSums(op, false, x, undefined, rstd, dy, dweight, undefined, rows, D);
}

function inputGradient(op: string, ln: boolean, x: View, weight: View | undefined, mean: View | undefined, rstd: View, dy: View, dx: View, rows: number, D: number): void {
  const ops = operands({ x, dy, rstd }, { w: weight, mean }, { dx });
  const L = (n: string, i: string) => load(n, i);
  const g = `${L('dy', 'rb + j')}${weight ? ` * ${L('w', 'j')}` : ''}`;
  const xh = `(${L('x', 'rb + j')}${ln ? ' - mu' : ''}) * r`;
  launchRows(op, ops, rows, D, 0, (args) => `let r = ${L('rstd', 'row')};
  ${ln ? `let mu = ${L('mean', 'row')};` : ''}
  var acc = vec2<f32>(0.0);
  for (var j = lid; j < D; j += WG) { let g = ${g}; acc += vec2<f32>(g, g * ${xh}); }
  let sums = wg_sum2(acc, ${args}) / f32(D);
  for (var j = lid; j < D; j += WG) {
    let g = ${g};
    ${store(ops, 'dx', 'rb + j', `r * (g${ln ? ' - sums.x' : ''} - ${xh} * sums.y)`)}
  }`);
}

/** dweight = Σ_rows dy·x̂ and dbias = Σ_rows dy (either may be absent). */
function columnSums(op: string, ln: boolean, x: View, mean: View | undefined, rstd: View, dy: View, dweight: View | undefined, dbias: View | undefined, rows: number, D: number): void {
  if ((!dweight && !dbias) || D === 0) return;
  const rt = runtime();
  const chunks = Math.max(1, Math.ceil(rows / ROWS_PER_CHUNK));
  const chunkLen = Math.max(1, Math.ceil(rows / chunks));
  const scratch = (v: View | undefined): View | undefined =>
    v && chunks > 1 ? { buffer: rt.allocate(chunks * D * 4, `${op}-partials`), dtype: 'f32', shape: [chunks * D], strides: [1], offset: 0 } : v;
  const pw = scratch(dweight);
  const pb = scratch(dbias);
  const ops = operands({ x, dy, rstd }, { mean: ln ? mean : undefined }, { dw: pw, db: pb });
  const key = `norm-columns|${op}|${ops.map((o) => `${o.name}:${o.view.dtype}`).join(',')}`;
  const L = (n: string, i: string) => load(n, i);
  const wgsl = () => `${enables(ops.map((o) => o.view.dtype))}${declare(ops)}
const WG = ${COLUMN_WG}u;
@compute @workgroup_size(${COLUMN_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * (nwg.x * WG);
  let D = pu(1u);
  if (t >= pu(3u) * D) { return; }
  let j = t % D;
  let c = t / D;
  let r0 = c * pu(0u);
  let r1 = min(pu(2u), r0 + pu(0u));
  var sw = 0.0;
  var sb = 0.0;
  for (var row = r0; row < r1; row++) {
    let g = ${L('dy', 'row * D + j')};
    sw += g * (${L('x', 'row * D + j')}${ln ? ` - ${L('mean', 'row')}` : ''}) * ${L('rstd', 'row')};
    sb += g;
  }
  ${pw ? store(ops, 'dw', 't', 'sw') : ''}
  ${pb ? store(ops, 'db', 't', 'sb') : ''}
}`;
  const params = new Params().u(chunkLen, D, rows, chunks).u(...ops.map((o) => o.view.offset)).build();
  rt.dispatch({ key, bindings: [...ops.map((o) => (o.write ? 'write' : 'read') as 'write' | 'read'), 'uniform'], wgsl }, ops.map((o) => o.view.buffer), grid1d(chunks * D, COLUMN_WG), params);
  if (chunks === 1) return;
  const layout = { outer: 1, R: chunks, inner: D, sOuter: chunks * D, sR: D, sInner: 1 };
  for (const [p, out] of [[pw, dweight], [pb, dbias]] as const) {
    if (!p || !out) continue;
    reduceInto(p, layout, out, 'sum');
    rt.release(p.buffer);
  }
}

// ----------------------------------------------------------------------------------------------
// Generation helpers: operands bind in order (reads, optional reads, writes) and their element
// offsets sit in the uniform at word 4 + binding.

function operands(reads: Record<string, View>, optional: Record<string, View | undefined>, writes: Record<string, View | undefined>): Operand[] {
  const out: Operand[] = [];
  for (const [name, view] of Object.entries(reads)) out.push({ name, view, write: false });
  for (const [name, view] of Object.entries(optional)) if (view) out.push({ name, view, write: false });
  for (const [name, view] of Object.entries(writes)) if (view) out.push({ name, view, write: true });
  return out;
}

function declare(ops: Operand[]): string {
  return [
    ...ops.map((o, k) => `@group(0) @binding(${k}) var<storage, ${o.write ? 'read_write' : 'read'}> ${o.name}_buf: array<${o.view.dtype}>;`),
    paramsDecl(ops.length, 1 + Math.ceil(ops.length / 4)),
    ...ops.map((o, k) => `fn ${o.name}_at(i: u32) -> u32 { return pu(${4 + k}u) + i; }`),
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

function launchRows(op: string, ops: Operand[], rows: number, D: number, eps: number, body: (args: string) => string): void {
  if (rows === 0 || D === 0) return;
  const wg = rowWorkgroupSize(D);
  const sg = useSubgroups();
  const dtypes: DType[] = ops.map((o) => o.view.dtype);
  const key = `norm|${op}|wg${wg}|sg${sg}|${ops.map((o) => `${o.name}:${o.view.dtype}`).join(',')}`;
  const params = new Params().u(rows, D).f(eps).u(0).u(...ops.map((o) => o.view.offset)).build();
  runtime().dispatch(
    {
      key,
      bindings: [...ops.map((o) => (o.write ? 'write' : 'read') as 'write' | 'read'), 'uniform'],
      wgsl: () => `${rowEnables(dtypes, sg)}${declare(ops)}
${reductionLibrary(wg, sg)}
@compute @workgroup_size(${wg})
fn main(${rowEntryArgs(sg)}) {
  let row = ${ROW_INDEX};
  if (row >= pu(0u)) { return; }
  ${rowSetup(sg)}
  let D = pu(1u);
  let rb = row * D;
  ${body(redArgs(sg))}
}`,
    },
    ops.map((o) => o.view.buffer),
    rowGrid(rows),
    params,
  );
}
