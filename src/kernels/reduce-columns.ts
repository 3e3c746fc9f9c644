/**
 * The columns strategy of reduce.ts in one dispatch when R needs a few chunks: the chunk
 * partials of an output are computed by threads of one workgroup and combined there, instead of
 * being stored and reduced by a second dispatch. Each thread runs exactly the partial loop of the
 * two-dispatch path, and one thread per output combines the partials serially in chunk order with
 * the same final scaling, so results are bitwise those of the two dispatches.
 *
 * Layout: a workgroup covers G = ⌊WG / chunks⌋ neighbouring outputs; thread lid handles output
 * q = lid mod G, chunk c = lid div G (neighbouring threads read neighbouring outputs).
 */
import type { PooledBuffer } from '../gpu/buffer-pool.js';
import { runtime } from '../gpu/runtime.js';
import type { DType } from '../core/dtype.js';
import { grid1d } from './common.js';
import { reductionLibrary, rowEnables } from './row-reduce.js';
import type { ColumnsWgFuse } from './reduce-groups.js';
import { uniforms } from './uniforms.js';

/** Most chunks combined in one workgroup (at least 16 outputs per workgroup of 256). */
export const COLUMNS_WG_MAX_CHUNKS = 16;
const WG = 256;

export interface ColumnsWgArgs {
  x: PooledBuffer;
  xT: DType;
  xOffset: number;
  layout: { outer: number; R: number; inner: number; sOuter: number; sR: number; sInner: number };
  chunks: number;
  chunkLen: number;
  combine: 'sum' | 'max' | 'min';
  prep: 'none' | 'square' | 'center';
  center: PooledBuffer | null;
  out: PooledBuffer;
  outT: DType;
  outOffset: number;
  scale: number;
  nanFlag: boolean;
}

const U = uniforms({
  outputs: 'u32',
  R: 'u32',
  inner: 'u32',
  s_outer: 'u32',
  s_r: 'u32',
  s_inner: 'u32',
  x_offset: 'u32',
  chunk_len: 'u32',
  chunks: 'u32',
  per_wg: 'u32',
  v_offset: 'u32',
  scale: 'f32',
  nan_flag: 'u32',
});

export function dispatchColumnsInWorkgroup(a: ColumnsWgArgs): void {
  const L = a.layout;
  const outputs = L.outer * L.inner;
  const perWg = Math.floor(WG / a.chunks);
  const key = `reduce|colswg|wg${WG}|${a.combine}|${a.prep}|${a.xT}>${a.outT}`;
  const buffers = [a.x, ...(a.center ? [a.center] : []), a.out];
  const bindings: ('read' | 'write' | 'uniform')[] = [...buffers.slice(0, -1).map(() => 'read' as const), 'write', 'uniform'];
  const params = U.pack({
    outputs,
    R: L.R,
    inner: L.inner,
    s_outer: L.sOuter,
    s_r: L.sR,
    s_inner: L.sInner,
    x_offset: a.xOffset,
    chunk_len: a.chunkLen,
    chunks: a.chunks,
    per_wg: perWg,
    v_offset: a.outOffset,
    scale: a.scale,
    nan_flag: a.nanFlag ? 1 : 0,
  });
  const groups = Math.ceil(outputs / perWg);
  const rt = runtime();
  // While a step is recorded: reductions of one layout may share a dispatch (groupColumnsWg).
  const fuse: ColumnsWgFuse | undefined =
    rt.recording && a.prep !== 'center'
      ? {
          columnsWg: {
            combine: a.combine,
            prep: a.prep,
            xT: a.xT,
            vT: a.outT,
            outputs,
            R: L.R,
            inner: L.inner,
            sOuter: L.sOuter,
            sR: L.sR,
            sInner: L.sInner,
            chunks: a.chunks,
            chunkLen: a.chunkLen,
            perWg,
            scale: a.scale,
            nanFlag: a.nanFlag,
            xOffset: a.xOffset,
            vOffset: a.outOffset,
          },
        }
      : undefined;
  rt.dispatch(
    { key, bindings, wgsl: () => columnsWgSource(a.combine, a.prep, a.xT, a.outT), fuse },
    buffers,
    grid1d(groups * WG, WG),
    params,
  );
}

function columnsWgSource(combine: ColumnsWgArgs['combine'], prep: ColumnsWgArgs['prep'], xT: DType, outT: DType): string {
  let b = 0;
  const decl = [`@group(0) @binding(${b++}) var<storage, read> xb: array<${xT}>;`];
  if (prep === 'center') decl.push(`@group(0) @binding(${b++}) var<storage, read> cb: array<f32>;`);
  decl.push(`@group(0) @binding(${b++}) var<storage, read_write> vb: array<${outT}>;`);
  decl.push(U.wgsl(b));
  // The same statements as reduce.ts's columns kernel (partials, then the final pass over them).
  const value =
    prep === 'square'
      ? 'let xv = f32(xb[e]); let v = xv * xv;'
      : prep === 'center'
        ? 'let d = f32(xb[e]) - cb[o * inner + i]; let v = d * d;'
        : 'let v = f32(xb[e]);';
  const ident = combine === 'sum' ? '0.0' : combine === 'max' ? '-f_inf()' : 'f_inf()';
  const step = (acc: string, v: string) => (combine === 'sum' ? `${acc} = ${acc} + ${v};` : `${acc} = c_${combine}(${acc}, ${v});`);
  return `${rowEnables([xT, outT], false)}${decl.join('\n')}
${reductionLibrary(WG, false)}
var<workgroup> part: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let per_wg = params.per_wg;
  let q = lid % per_wg;
  let c = lid / per_wg;
  let g = (wid.x + wid.y * nwg.x) * per_wg + q;
  var acc = ${ident};
  if (c < params.chunks && g < params.outputs) {
    let inner = params.inner;
    let i = g % inner;
    let o = g / inner;
    let base = params.x_offset + o * params.s_outer + i * params.s_inner;
    let r0 = c * params.chunk_len;
    let r1 = min(params.R, r0 + params.chunk_len);
    let s_r = params.s_r;
    for (var r = r0; r < r1; r++) {
      let e = base + r * s_r;
      ${value}
      ${step('acc', 'v')}
    }
  }
  part[lid] = acc;
  workgroupBarrier();
  if (c == 0u && g < params.outputs) {
    var tot = ${ident};
    for (var k = 0u; k < params.chunks; k++) {
      let v = part[k * per_wg + q];
      ${step('tot', 'v')}
    }
    vb[params.v_offset + g] = ${outT}(select(tot * params.scale, select(f_inf(), f_nan(), tot == 0.0), params.nan_flag != 0u));
  }
}`;
}
