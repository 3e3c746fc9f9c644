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
import { enables, FLAT_INDEX, grid1d, Params, paramsDecl, WG } from './common.js';
import { coalesce } from './elementwise.js';
import type { View } from './view.js';

/** Leading dims (after merging the ones contiguous in both x and out) the kernel decodes. */
const MAX_LEAD = 6;

// Uniform layout (u32 words).
const P = {
  pairs: 0, n: 1, half: 2, lead: 3,
  leadShape: 4, xLead: 4 + MAX_LEAD, oLead: 4 + 2 * MAX_LEAD,
  // x sN, x sD, x off, out sN, out sD, out off, cos sN, cos sD, cos off, sin sN, sin sD, sin off
  tail: 4 + 3 * MAX_LEAD,
} as const;
const PARAM_VEC4S = Math.ceil((P.tail + 12) / 4);

function ropeSource(dtypes: DType[], lead: number, inverse: boolean): string {
  const [xT, cT, sT, oT] = dtypes;
  const walk: string[] = [];
  for (let d = lead - 1; d >= 0; d--) {
    walk.push(`  { let sz = pu(${P.leadShape + d}u); let c = rem % sz; rem = rem / sz; xo += c * pu(${P.xLead + d}u); oo += c * pu(${P.oLead + d}u); }`);
  }
  const t = P.tail;
  // Forward: (a, b) → (a·c0 − b·s0, b·c1 + a·s1). Transpose: (a, b) → (a·c0 + b·s1, b·c1 − a·s0).
  const outs = inverse
    ? ['a * c0 + b * s1', 'b * c1 - a * s0']
    : ['a * c0 - b * s0', 'b * c1 + a * s1'];
  return `${enables(dtypes)}@group(0) @binding(0) var<storage, read> x_buf: array<${xT}>;
@group(0) @binding(1) var<storage, read> cos_buf: array<${cT}>;
@group(0) @binding(2) var<storage, read> sin_buf: array<${sT}>;
@group(0) @binding(3) var<storage, read_write> out_buf: array<${oT}>;
${paramsDecl(4, PARAM_VEC4S)}
const WG = ${WG}u;
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let p = ${FLAT_INDEX};
  if (p >= pu(${P.pairs}u)) { return; }
  let half = pu(${P.half}u);
  let N = pu(${P.n}u);
  let e0 = 2u * (p % half);
  let n = (p / half) % N;
  var rem = p / (half * N);
  var xo = pu(${t + 2}u) + n * pu(${t}u) + e0 * pu(${t + 1}u);
  var oo = pu(${t + 5}u) + n * pu(${t + 3}u) + e0 * pu(${t + 4}u);
${walk.join('\n')}
  let a = f32(x_buf[xo]);
  let b = f32(x_buf[xo + pu(${t + 1}u)]);
  let ci = pu(${t + 8}u) + n * pu(${t + 6}u) + e0 * pu(${t + 7}u);
  let si = pu(${t + 11}u) + n * pu(${t + 9}u) + e0 * pu(${t + 10}u);
  let c0 = f32(cos_buf[ci]);
  let c1 = f32(cos_buf[ci + pu(${t + 7}u)]);
  let s0 = f32(sin_buf[si]);
  let s1 = f32(sin_buf[si + pu(${t + 10}u)]);
  out_buf[oo] = ${oT}(${outs[0]});
  out_buf[oo + pu(${t + 4}u)] = ${oT}(${outs[1]});
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
  for (const [name, t] of [['cos', cos], ['sin', sin]] as const) {
    if (t.shape.length !== 2 || t.shape[0] !== N || t.shape[1] !== D) throw new RangeError(`rope: ${name} must be [${N}, ${D}], got [${t.shape.join(', ')}]`);
  }
  if (out.shape.length !== r || out.shape.some((s, i) => s !== x.shape[i])) {
    throw new RangeError(`rope: out must have shape [${x.shape.join(', ')}], got [${out.shape.join(', ')}]`);
  }
  for (const [name, t] of [['x', x], ['cos', cos], ['sin', sin], ['out', out]] as const) {
    if (t.dtype !== 'f32' && t.dtype !== 'f16') throw new TypeError(`rope: ${name} must be f32 or f16, got ${t.dtype}`);
  }
  const pairs = (x.shape.reduce((a, b) => a * b, 1) / 2) | 0;
  if (pairs === 0) return;
  const lead = coalesce(x.shape.slice(0, -2), [x.strides.slice(0, -2), out.strides.slice(0, -2)]);
  if (lead.shape.length > MAX_LEAD) throw new RangeError(`rope: ${lead.shape.length} leading dims after merging; at most ${MAX_LEAD}`);
  const p = new Params().u(pairs, N, D / 2, lead.shape.length);
  p.u(...lead.shape).pad(P.xLead);
  p.u(...lead.strides[0]).pad(P.oLead);
  p.u(...lead.strides[1]).pad(P.tail);
  const two = (v: View) => [v.strides[v.strides.length - 2], v.strides[v.strides.length - 1], v.offset];
  p.u(...two(x), ...two(out), ...two(cos), ...two(sin));
  const dtypes = [x.dtype, cos.dtype, sin.dtype, out.dtype];
  runtime().dispatch(
    {
      key: `rope|${dtypes.join(',')}|lead${lead.shape.length}|${inverse ? 'transpose' : 'forward'}`,
      bindings: ['read', 'read', 'read', 'write', 'uniform'],
      wgsl: () => ropeSource(dtypes, lead.shape.length, inverse),
    },
    [x.buffer, cos.buffer, sin.buffer, out.buffer],
    grid1d(pairs),
    p.build(),
  );
}
