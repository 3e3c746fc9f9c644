/**
 * Column reductions of one layout sharing a dispatch, for the fusion pass of compiled steps
 * (fusion-passes.ts): the descriptors reduce.ts and reduce-columns.ts attach to their dispatches
 * while a step is recorded, and the group kernels. Member m of a group runs on its own range of
 * workgroups with exactly the loop of the kernel it replaces, so results are bitwise the same.
 */
import type { DType } from '../core/dtype.js';
import { grid1d } from './common.js';
import { reductionLibrary, rowEnables } from './row-reduce.js';
import { uniforms } from './uniforms.js';

const WG = 256;

/**
 * A single-chunk column reduction as the fusion pass of compiled steps sees it: two of one layout
 * (the adaLN shift and scale gradients summed over tokens) can share a dispatch.
 */
export interface ColumnsReduceFuse {
  columnsReduce: {
    combine: 'sum' | 'max' | 'min';
    prep: 'none' | 'square';
    xT: DType;
    vT: DType;
    wg: number;
    outputs: number;
    R: number;
    inner: number;
    sOuter: number;
    sR: number;
    sInner: number;
    scale: number;
    nanFlag: boolean;
    xOffset: number;
    vOffset: number;
  };
}

/** Most single-chunk column reductions one dispatch runs. */
export const MAX_GROUPED_REDUCES = 4;

type Field = 'u32' | 'f32';
/** What both group kinds share per member: the buffers' element types and offsets, the reduction. */
interface Member {
  combine: 'sum' | 'max' | 'min';
  prep: 'none' | 'square';
  xT: DType;
  vT: DType;
  xOffset: number;
  vOffset: number;
}

/** The k members if they differ only in buffers and offsets (the `same` fields equal), else null. */
function sameLayout<T extends Member>(members: T[], same: (keyof T)[]): T[] | null {
  const [p] = members;
  const k = members.length;
  return k >= 2 && k <= MAX_GROUPED_REDUCES && members.every((q) => same.every((f) => p[f] === q[f])) ? members : null;
}

/** A group's uniforms: the kind's shared fields, then each member's x and v offsets (cached per kind and k). */
function memberUniforms(cache: ReturnType<typeof uniforms>[], shared: Record<string, Field>, k: number) {
  const fields = { ...shared };
  for (let j = 0; j < k; j++) {
    fields[`x_offset${j}`] = 'u32';
    fields[`v_offset${j}`] = 'u32';
  }
  return (cache[k] ??= uniforms(fields));
}

function packMembers(layout: ReturnType<typeof uniforms>, values: Record<string, number>, members: Member[]): Uint32Array {
  const all = { ...values };
  members.forEach((q, j) => {
    all[`x_offset${j}`] = q.xOffset;
    all[`v_offset${j}`] = q.vOffset;
  });
  return layout.pack(all);
}

/** WGSL pieces both group kernels use: bindings x0, out0, x1, out1, …, the per-member branch, load, combine. */
function memberWgsl(p: Member, k: number) {
  const js = Array.from({ length: k }, (_, j) => j);
  return {
    decls: js
      .map(
        (j) =>
          `@group(0) @binding(${2 * j}) var<storage, read> xb${j}: array<${p.xT}>;\n@group(0) @binding(${2 * j + 1}) var<storage, read_write> vb${j}: array<${p.vT}>;`,
      )
      .join('\n'),
    chain: (f: (j: number) => string) => js.map((j) => `${j ? 'else ' : ''}if (m == ${j}u) { ${f(j)} }`).join(' '),
    load: (j: number) => (p.prep === 'square' ? `{ let xv = f32(xb${j}[e]); v = xv * xv; }` : `v = f32(xb${j}[e]);`),
    ident: p.combine === 'sum' ? '0.0' : p.combine === 'max' ? '-f_inf()' : 'f_inf()',
    step: (acc: string, v: string) => (p.combine === 'sum' ? `${acc} = ${acc} + ${v};` : `${acc} = c_${p.combine}(${acc}, ${v});`),
  };
}

const groupLayouts: ReturnType<typeof uniforms>[] = [];
const groupUniforms = (k: number) =>
  memberUniforms(
    groupLayouts,
    { outputs: 'u32', half: 'u32', R: 'u32', inner: 'u32', s_outer: 'u32', s_r: 'u32', s_inner: 'u32', scale: 'f32', nan_flag: 'u32' },
    k,
  );

/**
 * One dispatch for 2–4 column reductions that differ only in their buffers and offsets: member m
 * runs on workgroups [m·⌈outputs/WG⌉, (m+1)·⌈outputs/WG⌉), each with the loop of reduce.ts's
 * single-chunk columns kernel (bitwise the same results). Bindings: x0, out0, x1, out1, ….
 */
export function groupColumnsReduce(
  members: ColumnsReduceFuse['columnsReduce'][],
): { key: string; wgsl: () => string; params: Uint32Array; workgroups: [number, number, number] } | null {
  const [p] = members;
  const same: (keyof ColumnsReduceFuse['columnsReduce'])[] = [
    'combine',
    'prep',
    'xT',
    'vT',
    'wg',
    'outputs',
    'R',
    'inner',
    'sOuter',
    'sR',
    'sInner',
    'scale',
    'nanFlag',
  ];
  if (!sameLayout(members, same)) return null;
  const k = members.length;
  const half = Math.ceil(p.outputs / p.wg) * p.wg;
  const values: Record<string, number> = {
    outputs: p.outputs,
    half,
    R: p.R,
    inner: p.inner,
    s_outer: p.sOuter,
    s_r: p.sR,
    s_inner: p.sInner,
    scale: p.scale,
    nan_flag: p.nanFlag ? 1 : 0,
  };
  const params = packMembers(groupUniforms(k), values, members);
  const key = `reduce|colsgroup${k}|wg${p.wg}|${p.combine}|${p.prep}|${p.xT}>${p.vT}`;
  const [x, y] = grid1d(k * half, p.wg);
  return { key, wgsl: () => groupSource(p, k), params, workgroups: [x, y, 1] };
}

function groupSource(p: ColumnsReduceFuse['columnsReduce'], k: number): string {
  const { decls, chain, load, ident, step } = memberWgsl(p, k);
  return `${rowEnables([p.xT, p.vT], false)}${decls}
${groupUniforms(k).wgsl(2 * k)}
${reductionLibrary(p.wg, false)}
@compute @workgroup_size(${p.wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let g0 = gid.x + gid.y * (nwg.x * WG);
  let m = g0 / params.half;
  let g = g0 - m * params.half;
  if (m >= ${k}u || g >= params.outputs) { return; }
  let inner = params.inner;
  let i = g % inner;
  let o = g / inner;
  var x_offset = 0u;
  ${chain((j) => `x_offset = params.x_offset${j};`)}
  let base = x_offset + o * params.s_outer + i * params.s_inner;
  let s_r = params.s_r;
  var acc = ${ident};
  for (var r = 0u; r < params.R; r++) {
    let e = base + r * s_r;
    var v: f32;
    ${chain(load)}
    ${step('acc', 'v')}
  }
  let res = ${p.vT}(select(acc * params.scale, select(f_inf(), f_nan(), acc == 0.0), params.nan_flag != 0u));
  ${chain((j) => `vb${j}[params.v_offset${j} + g] = res;`)}
}`;
}

/** A few-chunk column reduction as the fusion pass sees it (several of one layout may share a dispatch). */
export interface ColumnsWgFuse {
  columnsWg: {
    combine: 'sum' | 'max' | 'min';
    prep: 'none' | 'square';
    xT: DType;
    vT: DType;
    outputs: number;
    R: number;
    inner: number;
    sOuter: number;
    sR: number;
    sInner: number;
    chunks: number;
    chunkLen: number;
    perWg: number;
    scale: number;
    nanFlag: boolean;
    xOffset: number;
    vOffset: number;
  };
}

const wgGroupLayouts: ReturnType<typeof uniforms>[] = [];
const wgGroupUniforms = (k: number) =>
  memberUniforms(
    wgGroupLayouts,
    {
      outputs: 'u32',
      wg_per_member: 'u32',
      R: 'u32',
      inner: 'u32',
      s_outer: 'u32',
      s_r: 'u32',
      s_inner: 'u32',
      chunk_len: 'u32',
      chunks: 'u32',
      per_wg: 'u32',
      scale: 'f32',
      nan_flag: 'u32',
    },
    k,
  );

/**
 * One dispatch for 2–4 few-chunk column reductions that differ only in their buffers and offsets
 * (bias gradients of layers of one width): member m runs on its own range of workgroups with the
 * loop and in-workgroup combine of dispatchColumnsInWorkgroup (bitwise the same results).
 * Bindings: x0, out0, x1, out1, ….
 */
export function groupColumnsWg(
  members: ColumnsWgFuse['columnsWg'][],
): { key: string; wgsl: () => string; params: Uint32Array; workgroups: [number, number, number] } | null {
  const [p] = members;
  const k = members.length;
  const same: (keyof ColumnsWgFuse['columnsWg'])[] = [
    'combine',
    'prep',
    'xT',
    'vT',
    'outputs',
    'R',
    'inner',
    'sOuter',
    'sR',
    'sInner',
    'chunks',
    'chunkLen',
    'perWg',
    'scale',
    'nanFlag',
  ];
  if (!sameLayout(members, same)) return null;
  const perMember = Math.ceil(p.outputs / p.perWg);
  const values: Record<string, number> = {
    outputs: p.outputs,
    wg_per_member: perMember,
    R: p.R,
    inner: p.inner,
    s_outer: p.sOuter,
    s_r: p.sR,
    s_inner: p.sInner,
    chunk_len: p.chunkLen,
    chunks: p.chunks,
    per_wg: p.perWg,
    scale: p.scale,
    nan_flag: p.nanFlag ? 1 : 0,
  };
  const key = `reduce|colswggroup${k}|wg${WG}|${p.combine}|${p.prep}|${p.xT}>${p.vT}`;
  const [x, y] = grid1d(k * perMember * WG, WG);
  return { key, wgsl: () => wgGroupSource(p, k), params: packMembers(wgGroupUniforms(k), values, members), workgroups: [x, y, 1] };
}

function wgGroupSource(p: ColumnsWgFuse['columnsWg'], k: number): string {
  const { decls, chain, load, ident, step } = memberWgsl(p, k);
  return `${rowEnables([p.xT, p.vT], false)}${decls}
${wgGroupUniforms(k).wgsl(2 * k)}
${reductionLibrary(WG, false)}
var<workgroup> part: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let per_wg = params.per_wg;
  let q = lid % per_wg;
  let c = lid / per_wg;
  let w = wid.x + wid.y * nwg.x;
  let m = w / params.wg_per_member;
  let g = (w - m * params.wg_per_member) * per_wg + q;
  var acc = ${ident};
  if (m < ${k}u && c < params.chunks && g < params.outputs) {
    let inner = params.inner;
    let i = g % inner;
    let o = g / inner;
    var x_offset = 0u;
    ${chain((j) => `x_offset = params.x_offset${j};`)}
    let base = x_offset + o * params.s_outer + i * params.s_inner;
    let r0 = c * params.chunk_len;
    let r1 = min(params.R, r0 + params.chunk_len);
    let s_r = params.s_r;
    for (var r = r0; r < r1; r++) {
      let e = base + r * s_r;
      var v: f32;
      ${chain(load)}
      ${step('acc', 'v')}
    }
  }
  part[lid] = acc;
  workgroupBarrier();
  if (m < ${k}u && c == 0u && g < params.outputs) {
    var tot = ${ident};
    for (var kk = 0u; kk < params.chunks; kk++) {
      let v = part[kk * per_wg + q];
      ${step('tot', 'v')}
    }
    let res = ${p.vT}(select(tot * params.scale, select(f_inf(), f_nan(), tot == 0.0), params.nan_flag != 0u));
    ${chain((j) => `vb${j}[params.v_offset${j} + g] = res;`)}
  }
}`;
}
