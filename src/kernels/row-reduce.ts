/**
 * What the row kernels (norm.ts, softmax.ts, and reduce.ts's "rows" strategy: one workgroup per
 * row) share: the WGSL workgroup-reduction library, its subgroup flavours, launch geometry, and
 * the check that turns a contiguous view into [rows, C].
 */
import { runtime } from '../gpu/runtime.js';
import type { DType } from '../core/dtype.js';
import { sizeOf } from '../core/shape.js';
import { enables, grid1d } from './common.js';
import { isContiguous, type View } from './view.js';
import { NAN_WGSL } from './wgsl-math.js';

/** rows × C of a contiguous f32/f16 view (C = the last dim), after checking it. */
export function rowsOf(v: View, op: string, what: string): [number, number] {
  if (!isContiguous(v))
    throw new RangeError(`${op}: ${what} must be contiguous, got strides [${v.strides.join(', ')}] for shape [${v.shape.join(', ')}]`);
  if (v.dtype !== 'f32' && v.dtype !== 'f16') throw new TypeError(`${op}: ${what} must be f32 or f16, got ${v.dtype}`);
  const C = v.shape.length ? v.shape[v.shape.length - 1] : 1;
  return [C === 0 ? 0 : sizeOf(v.shape) / C, C];
}

export type ReductionMode = 'auto' | 'tree' | 'subgroup' | 'subgroup-fallback';
let reductionMode: ReductionMode = 'auto';

/**
 * Forces the flavour of workgroup reduction (for tests and benchmarks): 'tree' = shared-memory
 * tree only; 'subgroup' = subgroup ops (throws without the feature); 'subgroup-fallback' =
 * subgroup kernels whose layout check is forced to fail, to exercise their tree fallback;
 * 'auto' = subgroups when the device has them.
 */
export function setReductionMode(mode: ReductionMode): void {
  reductionMode = mode;
}

/** Subgroup flavour for the next kernel: false (tree), 'sg', or 'sgfb' (forced fallback). Goes into keys. */
export type SubgroupFlavour = false | 'sg' | 'sgfb';

export function useSubgroups(): SubgroupFlavour {
  const has = runtime().caps.subgroups;
  if (reductionMode !== 'auto' && reductionMode !== 'tree' && !has)
    throw new Error(`reduction mode '${reductionMode}' needs the device feature 'subgroups'`);
  if (reductionMode === 'tree' || !has) return false;
  return reductionMode === 'subgroup-fallback' ? 'sgfb' : 'sg';
}

/**
 * How a row kernel maps rows to invocations. `perThread: false`: one workgroup of `wg` threads per
 * row, combined by the workgroup reductions below. `perThread: true`: one row per invocation in
 * workgroups of `wg`, with no barriers and no workgroup memory: on a CPU adapter (llvmpipe
 * emulates each barrier by switching coroutines) this is what short rows want; the row's loop is
 * then serial per invocation and the "reductions" are identities.
 */
export interface RowPlan {
  perThread: boolean;
  wg: number;
  /**
   * Per-thread plans only: the row is read and written as vec4 (set by the launcher when the row
   * length and every row operand's offset are multiples of 4). On llvmpipe each invocation's loads
   * are separate gathers, so a quarter as many load instructions is what makes short rows fast.
   */
  vec4?: boolean;
  /**
   * vec4 plans only: the subgroup size when it is fixed (lavapipe: 8, the SIMD width). The weight
   * and bias, the same for every row, are then loaded once per subgroup (lane l reads element
   * j0 + l) and handed to every lane with subgroupBroadcast, instead of once per lane: on
   * llvmpipe each of those loads is a loop over the lanes, so this removes most of a forward's
   * weight traffic (see norm.ts weightLoop).
   */
  lanes?: number;
  /**
   * Shared-weights plans only: the launch has exactly one invocation per row, so no invocation
   * runs past the last row and the stores need no `live` guard.
   */
  rowsExact?: boolean;
  /** Shared-weights plans only: the row's vec4 count is a multiple of `lanes`, so the unrolled steps need no bounds test. */
  stepsExact?: boolean;
}

/** Whether a per-thread row kernel over rows of length D can use vec4 access to these operands. */
export function vec4RowsOk(plan: RowPlan, D: number, operands: { offset: number }[]): boolean {
  return plan.perThread && D % 4 === 0 && operands.every((o) => o.offset % 4 === 0);
}

/** A plan, or a workgroup size meaning one workgroup per row (the WGSL snapshots use both). */
export type PlanArg = RowPlan | number;
export const asPlan = (p: PlanArg): RowPlan => (typeof p === 'number' ? { perThread: false, wg: p } : p);

export type RowStrategy = 'auto' | 'workgroup' | 'thread';
let rowStrategy: RowStrategy = 'auto';
/** Forces one row per workgroup or per thread (for tests and benchmarks); 'auto' = the tuning's choice. */
export function setRowStrategy(s: RowStrategy): void {
  rowStrategy = s;
}
/** The forced strategy, applied over a tuned or table plan (the workgroup size of the other kind is kept from `fallbackWg`). */
export function applyRowStrategy(plan: RowPlan, workgroupWg: number): RowPlan {
  if (rowStrategy === 'thread' && !plan.perThread) return { perThread: true, wg: 64 };
  if (rowStrategy === 'workgroup' && plan.perThread) return { perThread: false, wg: workgroupWg };
  return plan;
}

/**
 * The pieces of WGSL and launch geometry a row kernel needs under a plan: the reduction library,
 * entry-point arguments, the row index, the set-up line, the arguments every wg_* call takes, the
 * workgroup size and the grid for `rows` rows. Under perThread, `lid` is 0 and `WG` is 1, so the
 * same strided loops run the whole row in one invocation.
 */
export interface RowFrame {
  library: string;
  entryArgs: string;
  rowIndex: string;
  setup: string;
  args: string;
  workgroupSize: number;
  grid(rows: number): [number, number];
}

export function rowFrame(plan: RowPlan, sg: SubgroupFlavour): RowFrame {
  if (!plan.perThread)
    return {
      library: reductionLibrary(plan.wg, sg),
      entryArgs: rowEntryArgs(sg),
      rowIndex: ROW_INDEX,
      setup: rowSetup(sg),
      args: redArgs(sg),
      workgroupSize: plan.wg,
      grid: rowGrid,
    };
  return {
    library: threadLibrary(),
    entryArgs: '@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>',
    rowIndex: `gid.x + gid.y * (nwg.x * ${plan.wg}u)`,
    setup: 'let lid = 0u;',
    args: 'lid',
    workgroupSize: plan.wg,
    grid: (rows) => grid1d(rows, plan.wg),
  };
}

/** The reduction library of a one-row-per-invocation kernel: the same names, each an identity. */
function threadLibrary(): string {
  return `const WG = 1u;
${NAN_WGSL}
fn wg_sum(v: f32, lid: u32) -> f32 { return v; }
fn wg_sum2(v: vec2<f32>, lid: u32) -> vec2<f32> { return v; }
fn wg_max(v: f32, lid: u32) -> f32 { return v; }
fn wg_min(v: f32, lid: u32) -> f32 { return v; }`;
}

/** Launch of `n` workgroups, 2-D when n exceeds the per-dimension limit; see ROW_INDEX. */
export function rowGrid(n: number): [number, number] {
  return grid1d(n, 1);
}
/** WGSL for the workgroup's flat index under rowGrid (uniform across the workgroup). */
export const ROW_INDEX = 'wid.x + wid.y * nwg.x';

/** Entry-point builtins a row kernel declares. */
export function rowEntryArgs(sg: SubgroupFlavour): string {
  const base = '@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32';
  return sg ? `${base}, @builtin(subgroup_invocation_id) sg_lane: u32, @builtin(subgroup_size) sg_size: u32` : base;
}
/** First statement of a row kernel after its uniform early return: sets up `sg_ok`. */
export function rowSetup(sg: SubgroupFlavour): string {
  return sg ? 'let sg_ok = sg_layout_ok(lid, sg_lane, sg_size);' : '';
}
/** Trailing arguments every wg_* call takes. */
export function redArgs(sg: SubgroupFlavour): string {
  return sg ? 'lid, sg_lane, sg_size, sg_ok' : 'lid';
}

/** `enable` lines for a row kernel over these dtypes. */
export function rowEnables(dtypes: DType[], sg: SubgroupFlavour): string {
  return enables(dtypes) + (sg ? 'enable subgroups;\n' : '');
}

/**
 * WGSL helpers: f_nan(), f_inf(), is_nan(), NaN-propagating c_max/c_min, and workgroup
 * reductions wg_sum (f32), wg_sum2 (vec2<f32>), wg_max, wg_min. Every invocation must call them
 * in uniform control flow; each returns the result to all invocations and leaves shared memory
 * free for the next call.
 *
 * The subgroup flavour reduces within subgroups, then across the per-subgroup partials. It needs
 * subgroups to be aligned runs of local_invocation_index, which WGSL does not promise; the kernel
 * checks this once per workgroup (sg_layout_ok) and falls back to the tree when it fails.
 */
export function reductionLibrary(wg: number, sg: SubgroupFlavour): string {
  const common = `const WG = ${wg}u;
${NAN_WGSL}
fn c_max(a: f32, b: f32) -> f32 { return select(select(max(a, b), b, is_nan(b)), a, is_nan(a)); }
fn c_min(a: f32, b: f32) -> f32 { return select(select(min(a, b), b, is_nan(b)), a, is_nan(a)); }
fn c_add(a: f32, b: f32) -> f32 { return a + b; }
fn c_add2(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> { return a + b; }
fn sg_max(v: f32) -> f32 { return select(subgroupMax(v), f_nan(), subgroupAny(is_nan(v))); }
fn sg_min(v: f32) -> f32 { return select(subgroupMin(v), f_nan(), subgroupAny(is_nan(v))); }
var<workgroup> red_f: array<f32, ${wg}>;
var<workgroup> red_v2: array<vec2<f32>, ${wg}>;
`;
  const fns: [string, string, string, string, string, string][] = [
    // name, type, shared array, combiner, subgroup reduction, identity
    ['wg_sum', 'f32', 'red_f', 'c_add', 'subgroupAdd', '0.0'],
    ['wg_sum2', 'vec2<f32>', 'red_v2', 'c_add2', 'subgroupAdd', 'vec2<f32>(0.0)'],
    ['wg_max', 'f32', 'red_f', 'c_max', 'sg_max', '-f_inf()'],
    ['wg_min', 'f32', 'red_f', 'c_min', 'sg_min', 'f_inf()'],
  ];
  const out = [sg ? common : common.replace(/^fn sg_.*\n/gm, '')];
  if (sg) {
    out.push(`var<workgroup> sg_bad_atomic: atomic<u32>;
var<workgroup> sg_bad: u32;
fn sg_layout_ok(lid: u32, lane: u32, size: u32) -> bool {
  let first = subgroupMin(lid);
  if (first + lane != lid || first % size != 0u) { atomicStore(&sg_bad_atomic, 1u); }
  workgroupBarrier();
  if (lid == 0u) { sg_bad = atomicLoad(&sg_bad_atomic); }
  return workgroupUniformLoad(&sg_bad) == ${sg === 'sgfb' ? '2u' : '0u'};
}`);
  }
  for (const [name, T, arr, comb, sgop, ident] of fns) {
    const tree = `${arr}[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) { ${arr}[lid] = ${comb}(${arr}[lid], ${arr}[lid + s]); }
    workgroupBarrier();
  }
  let r = ${arr}[0];
  workgroupBarrier();
  return r;`;
    if (!sg) {
      out.push(`fn ${name}(v: ${T}, lid: u32) -> ${T} {\n  ${tree}\n}`);
      continue;
    }
    out.push(`fn ${name}(v: ${T}, lid: u32, lane: u32, size: u32, ok: bool) -> ${T} {
  if (ok) {
    let part = ${sgop}(v);
    if (lane == 0u) { ${arr}[lid / size] = part; }
    workgroupBarrier();
    // Every subgroup folds the per-subgroup partials the same way, so all get the same value.
    let n = (WG + size - 1u) / size;
    var acc = ${ident};
    for (var k = 0u; k < n; k += size) {
      if (k + lane < n) { acc = ${comb}(acc, ${arr}[k + lane]); }
    }
    let r = ${sgop}(acc);
    workgroupBarrier();
    return r;
  }
  ${tree}
}`);
  }
  return out.join('\n');
}
