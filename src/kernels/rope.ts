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
function layoutFor(lead: number) {
  return uniforms({
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
const ropeUniforms = (lead: number) => (layouts[lead] ??= layoutFor(lead));

function ropeSource(dtypes: DType[], lead: number, inverse: boolean): string {
  const [xT, cT, sT, oT] = dtypes;
  const walk: string[] = [];
  for (let d = lead - 1; d >= 0; d--) {
    walk.push(
      `  { let sz = params.lead_shape_${d}; let c = rem % sz; rem = rem / sz; xo += c * params.x_lead_stride_${d}; oo += c * params.out_lead_stride_${d}; }`,
    );
  }
  // Forward: (a, b) → (a·c0 − b·s0, b·c1 + a·s1). Transpose: (a, b) → (a·c0 + b·s1, b·c1 − a·s0).
  const outs = inverse ? ['a * c0 + b * s1', 'b * c1 - a * s0'] : ['a * c0 - b * s0', 'b * c1 + a * s1'];
  return `${enables(dtypes)}@group(0) @binding(0) var<storage, read> x_buf: array<${xT}>;
@group(0) @binding(1) var<storage, read> cos_buf: array<${cT}>;
@group(0) @binding(2) var<storage, read> sin_buf: array<${sT}>;
@group(0) @binding(3) var<storage, read_write> out_buf: array<${oT}>;
${ropeUniforms(lead).wgsl(4)}
const WG = ${WG}u;
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let p = ${FLAT_INDEX};
  if (p >= params.pairs) { return; }
  let half = params.half;
  let N = params.n;
  let e0 = 2u * (p % half);
  let n = (p / half) % N;
  var rem = p / (half * N);
  var xo = params.x_offset + n * params.x_sn + e0 * params.x_sd;
  var oo = params.out_offset + n * params.out_sn + e0 * params.out_sd;
${walk.join('\n')}
  let a = f32(x_buf[xo]);
  let b = f32(x_buf[xo + params.x_sd]);
  let ci = params.cos_offset + n * params.cos_sn + e0 * params.cos_sd;
  let si = params.sin_offset + n * params.sin_sn + e0 * params.sin_sd;
  let c0 = f32(cos_buf[ci]);
  let c1 = f32(cos_buf[ci + params.cos_sd]);
  let s0 = f32(sin_buf[si]);
  let s1 = f32(sin_buf[si + params.sin_sd]);
  out_buf[oo] = ${oT}(${outs[0]});
  out_buf[oo + params.out_sd] = ${oT}(${outs[1]});
}`;
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
  const params = ropeUniforms(lead.shape.length).pack({
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
  });
  const dtypes = [x.dtype, cos.dtype, sin.dtype, out.dtype];
  runtime().dispatch(
    {
      key: `rope|${dtypes.join(',')}|lead${lead.shape.length}|${inverse ? 'transpose' : 'forward'}`,
      bindings: ['read', 'read', 'read', 'write', 'uniform'],
      wgsl: () => ropeSource(dtypes, lead.shape.length, inverse),
    },
    [x.buffer, cos.buffer, sin.buffer, out.buffer],
    grid1d(pairs),
    params,
  );
}
