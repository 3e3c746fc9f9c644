/**
 * Rotary position embedding on interleaved pairs (2i, 2i+1):
 *   out = x·cos + rot(x)·sin,   rot(x)_{2i} = −x_{2i+1},  rot(x)_{2i+1} = x_{2i}
 * with x [..., N, D] (any strides: q/k may be views into a fused qkv buffer) and cos/sin [N, D]
 * broadcast over the leading dims. One thread per pair.
 *
 * `inverse` applies the transpose of that map:
 *   dx_{2i} = g_{2i}·cos_{2i} + g_{2i+1}·sin_{2i+1},   dx_{2i+1} = g_{2i+1}·cos_{2i+1} − g_{2i}·sin_{2i}
 * which is the exact backward (dX = Jᵀ·dOut) for any tables. With the usual tables (each
 * frequency repeated on both members of a pair, cos² + sin² = 1) it is rope(dOut, cos, −sin), the
 * rotation by −θ, and therefore also the inverse of the forward map.
 */
import { runtime } from '../gpu/runtime.js';
import type { DType } from '../core/dtype.js';
import { enables, FLAT_INDEX, grid1d, WG } from './common.js';
import { coalesce } from './elementwise.js';
import { uniforms } from './uniforms.js';
import type { View } from './view.js';

/** Leading dims (after merging the ones contiguous in both x and out) the kernel decodes. */
const MAX_LEAD = 6;

/**
 * Parameters: pairs to rotate, N, D/2, the merged leading dims' sizes and x's and out's strides
 * along them, then (row stride, element stride, offset) of x, out, cos and sin.
 */
function layoutFor(lead: number, pair = false) {
  return uniforms({
    ...(pair ? { x_offset2: 'u32', out_offset2: 'u32' } : {}),
    pairs: 'u32',
    n: 'u32',
    half: 'u32',
    lead_shape: ['u32', lead],
    x_lead_stride: ['u32', lead],
    out_lead_stride: ['u32', lead],
    x_sn: 'u32',
    x_sd: 'u32',
    x_offset: 'u32',
    out_sn: 'u32',
    out_sd: 'u32',
    out_offset: 'u32',
    cos_sn: 'u32',
    cos_sd: 'u32',
    cos_offset: 'u32',
    sin_sn: 'u32',
    sin_sd: 'u32',
    sin_offset: 'u32',
  } as const);
}
const layouts: ReturnType<typeof layoutFor>[] = [];
const pairLayouts: ReturnType<typeof layoutFor>[] = [];
const ropeUniforms = (lead: number, pair = false) =>
  pair ? (pairLayouts[lead] ??= layoutFor(lead, true)) : (layouts[lead] ??= layoutFor(lead));

/**
 * The kernel; `pair`: two ropes with the same tables and layout in one dispatch (bindings x, cos,
 * sin, out, x2, out2), threads past `pairs` doing the second with the same arithmetic.
 */
function ropeSource(dtypes: DType[], lead: number, inverse: boolean, pair = false): string {
  const [xT, cT, sT, oT] = dtypes;
  const walk: string[] = [];
  for (let d = lead - 1; d >= 0; d--) {
    walk.push(
      `  { let sz = params.lead_shape_${d}; let c = rem % sz; rem = rem / sz; xo += c * params.x_lead_stride_${d}; oo += c * params.out_lead_stride_${d}; }`,
    );
  }
  // Forward: (a, b) → (a·c0 − b·s0, b·c1 + a·s1). Transpose: (a, b) → (a·c0 + b·s1, b·c1 − a·s0).
  const outs = inverse ? ['a * c0 + b * s1', 'b * c1 - a * s0'] : ['a * c0 - b * s0', 'b * c1 + a * s1'];
  const second = (one: string, two: string) => (pair ? `select(${one}, ${two}, second)` : one);
  const load = pair
    ? `var a: f32; var b: f32;
  if (second) { a = f32(x2_buf[xo]); b = f32(x2_buf[xo + params.x_sd]); } else { a = f32(x_buf[xo]); b = f32(x_buf[xo + params.x_sd]); }`
    : `let a = f32(x_buf[xo]);
  let b = f32(x_buf[xo + params.x_sd]);`;
  const store = (buf: string) => `${buf}[oo] = ${oT}(${outs[0]});
  ${buf}[oo + params.out_sd] = ${oT}(${outs[1]});`;
  return `${enables(dtypes)}@group(0) @binding(0) var<storage, read> x_buf: array<${xT}>;
@group(0) @binding(1) var<storage, read> cos_buf: array<${cT}>;
@group(0) @binding(2) var<storage, read> sin_buf: array<${sT}>;
@group(0) @binding(3) var<storage, read_write> out_buf: array<${oT}>;
${
  pair
    ? `@group(0) @binding(4) var<storage, read> x2_buf: array<${xT}>;
@group(0) @binding(5) var<storage, read_write> out2_buf: array<${oT}>;
`
    : ''
}${ropeUniforms(lead, pair).wgsl(pair ? 6 : 4)}
const WG = ${WG}u;
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
${
  pair
    ? `  let p2 = ${FLAT_INDEX};
  if (p2 >= 2u * params.pairs) { return; }
  let second = p2 >= params.pairs;
  let p = select(p2, p2 - params.pairs, second);`
    : `  let p = ${FLAT_INDEX};
  if (p >= params.pairs) { return; }`
}
  let half = params.half;
  let N = params.n;
  let e0 = 2u * (p % half);
  let n = (p / half) % N;
  var rem = p / (half * N);
  var xo = ${second('params.x_offset', 'params.x_offset2')} + n * params.x_sn + e0 * params.x_sd;
  var oo = ${second('params.out_offset', 'params.out_offset2')} + n * params.out_sn + e0 * params.out_sd;
${walk.join('\n')}
  ${load}
  let ci = params.cos_offset + n * params.cos_sn + e0 * params.cos_sd;
  let si = params.sin_offset + n * params.sin_sn + e0 * params.sin_sd;
  let c0 = f32(cos_buf[ci]);
  let c1 = f32(cos_buf[ci + params.cos_sd]);
  let s0 = f32(sin_buf[si]);
  let s1 = f32(sin_buf[si + params.sin_sd]);
  ${pair ? `if (second) { ${store('out2_buf')} } else { ${store('out_buf')} }` : store('out_buf')}
}`;
}

/** A rope dispatch as the fusion pass of compiled steps sees it (two of one layout may share a dispatch). */
export interface RopeFuse {
  rope: { key: string; dtypes: DType[]; lead: number; inverse: boolean; values: Record<string, number | number[]> };
}

/**
 * One dispatch for two ropes that differ only in x's and out's buffers and offsets (q and k of
 * one attention; their gradients): bindings x, cos, sin, out, x2, out2. Bitwise the same results.
 */
export function pairRope(
  a: RopeFuse,
  b: RopeFuse,
): { key: string; wgsl: () => string; params: Uint32Array; workgroups: [number, number, number] } | null {
  const p = a.rope;
  const q = b.rope;
  if (p.key !== q.key) return null;
  for (const [k, v] of Object.entries(p.values)) {
    if (k === 'x_offset' || k === 'out_offset') continue;
    const w = q.values[k];
    if (Array.isArray(v) ? !Array.isArray(w) || v.some((x, i) => x !== w[i]) : v !== w) return null;
  }
  const params = ropeUniforms(p.lead, true).pack({ ...p.values, x_offset2: q.values.x_offset, out_offset2: q.values.out_offset } as never);
  const [x, y] = grid1d(2 * (p.values.pairs as number));
  return {
    key: `${p.key}|pair`,
    wgsl: () => ropeSource(p.dtypes, p.lead, p.inverse, true),
    params,
    workgroups: [x, y, 1],
  };
}

/**
 * out = rope(x) (or its transpose when `inverse`). x: [..., N, D] with any strides, D even;
 * cos/sin: [N, D] (any strides); out: x's shape (contiguous, or any non-overlapping strides).
 */
export function ropeInto(x: View, cos: View, sin: View, out: View, inverse = false): void {
  const r = x.shape.length;
  if (r < 2) throw new RangeError(`rope: x must be [..., N, D], got [${x.shape.join(', ')}]`);
  const [N, D] = x.shape.slice(-2);
  if (D % 2 !== 0) throw new RangeError(`rope: head dim ${D} must be even`);
  for (const [name, t] of [
    ['cos', cos],
    ['sin', sin],
  ] as const) {
    if (t.shape.length !== 2 || t.shape[0] !== N || t.shape[1] !== D)
      throw new RangeError(`rope: ${name} must be [${N}, ${D}], got [${t.shape.join(', ')}]`);
  }
  if (out.shape.length !== r || out.shape.some((s, i) => s !== x.shape[i])) {
    throw new RangeError(`rope: out must have shape [${x.shape.join(', ')}], got [${out.shape.join(', ')}]`);
  }
  for (const [name, t] of [
    ['x', x],
    ['cos', cos],
    ['sin', sin],
    ['out', out],
  ] as const) {
    if (t.dtype !== 'f32' && t.dtype !== 'f16') throw new TypeError(`rope: ${name} must be f32 or f16, got ${t.dtype}`);
  }
  const pairs = (x.shape.reduce((a, b) => a * b, 1) / 2) | 0;
  if (pairs === 0) return;
  const lead = coalesce(x.shape.slice(0, -2), [x.strides.slice(0, -2), out.strides.slice(0, -2)]);
  if (lead.shape.length > MAX_LEAD) throw new RangeError(`rope: ${lead.shape.length} leading dims after merging; at most ${MAX_LEAD}`);
  const sn = (v: View) => v.strides[v.strides.length - 2];
  const sd = (v: View) => v.strides[v.strides.length - 1];
  const values = {
    pairs,
    n: N,
    half: D / 2,
    lead_shape: lead.shape,
    x_lead_stride: lead.strides[0],
    out_lead_stride: lead.strides[1],
    x_sn: sn(x),
    x_sd: sd(x),
    x_offset: x.offset,
    out_sn: sn(out),
    out_sd: sd(out),
    out_offset: out.offset,
    cos_sn: sn(cos),
    cos_sd: sd(cos),
    cos_offset: cos.offset,
    sin_sn: sn(sin),
    sin_sd: sd(sin),
    sin_offset: sin.offset,
  };
  const params = ropeUniforms(lead.shape.length).pack(values);
  const dtypes = [x.dtype, cos.dtype, sin.dtype, out.dtype];
  const key = `rope|${dtypes.join(',')}|lead${lead.shape.length}|${inverse ? 'transpose' : 'forward'}`;
  const rt = runtime();
  const fuse: RopeFuse | undefined = rt.recording ? { rope: { key, dtypes, lead: lead.shape.length, inverse, values } } : undefined;
  rt.dispatch(
    {
      key,
      bindings: ['read', 'read', 'read', 'write', 'uniform'],
      wgsl: () => ropeSource(dtypes, lead.shape.length, inverse),
      fuse,
    },
    [x.buffer, cos.buffer, sin.buffer, out.buffer],
    grid1d(pairs),
    params,
  );
}
