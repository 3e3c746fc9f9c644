/**
 * Rotary position embedding on interleaved pairs (spec §5.3):
 * out = x·cos + rot(x)·sin, rot(x)_{2i} = −x_{2i+1}, rot(x)_{2i+1} = x_{2i}.
 * The inverse rotation (sin negated) is the backward: the rotation is orthogonal.
 */
import { runtime } from '../gpu/runtime.js';
import { enables, FLAT_INDEX, grid1d, Params, paramsDecl, WG } from './common.js';
import type { View } from './view.js';

const MAX_LEAD = 4;

/**
 * x: [..., N, D] with any strides (e.g. q/k views into a fused qkv buffer); cos/sin: [N, D]
 * contiguous; out: contiguous, same shape as x.
 */
export function ropeInto(x: View, cos: View, sin: View, out: View, inverse = false): void {
  const r = x.shape.length;
  if (r < 2) throw new RangeError(`rope: input must be [..., N, D], got [${x.shape}]`);
  const N = x.shape[r - 2];
  const D = x.shape[r - 1];
  if (D % 2) throw new RangeError(`rope: head dim ${D} must be even`);
  const lead = x.shape.slice(0, -2);
  if (lead.length > MAX_LEAD) throw new RangeError(`rope: at most ${MAX_LEAD} leading dims, got ${lead.length}`);
  const total = out.shape.reduce((a, b) => a * b, 1);
  if (total === 0) return;
  // Leading dims padded to MAX_LEAD (size 1, stride 0) so one kernel serves every rank.
  const pad = MAX_LEAD - lead.length;
  const shape = [...Array(pad).fill(1), ...lead];
  const strides = [...Array(pad).fill(0), ...x.strides.slice(0, -2)];
  const dtypes = [x.dtype, cos.dtype, sin.dtype, out.dtype];
  const key = `rope|${dtypes.join(',')}|${inverse ? 'inv' : 'fwd'}`;
  const p = new Params()
    .u(total, N, D, x.offset)
    .u(...shape)
    .u(...strides)
    .u(x.strides[r - 2], x.strides[r - 1], cos.offset, sin.offset)
    .u(out.offset);
  runtime().dispatch(
    {
      key,
      bindings: ['read', 'read', 'read', 'write', 'uniform'],
      wgsl: () => `${enables(dtypes)}@group(0) @binding(0) var<storage, read> xs: array<${x.dtype}>;
@group(0) @binding(1) var<storage, read> cs: array<${cos.dtype}>;
@group(0) @binding(2) var<storage, read> sn: array<${sin.dtype}>;
@group(0) @binding(3) var<storage, read_write> outs: array<${out.dtype}>;
${paramsDecl(4, 5)}
const WG = ${WG}u;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${FLAT_INDEX};
  if (i >= pu(0u)) { return; }
  let N = pu(1u);
  let D = pu(2u);
  let d = i % D;
  let n = (i / D) % N;
  var rem = i / (D * N);
  var base = pu(3u);
  for (var k = 3; k >= 0; k--) {
    let sz = pu(4u + u32(k));
    base += (rem % sz) * pu(8u + u32(k));
    rem = rem / sz;
  }
  let sN = pu(12u);
  let sD = pu(13u);
  let pair = d ^ 1u;
  let xv = f32(xs[base + n * sN + d * sD]);
  let xp = f32(xs[base + n * sN + pair * sD]);
  // rot(x)_d = -x_{d+1} for even d, x_{d-1} for odd d.
  let rot = select(-xp, xp, (d & 1u) == 1u);
  let c = f32(cs[pu(14u) + n * D + d]);
  let s = ${inverse ? '-' : ''}f32(sn[pu(15u) + n * D + d]);
  outs[pu(16u) + i] = ${out.dtype}(xv * c + rot * s);
}`,
    },
    [x.buffer, cos.buffer, sin.buffer, out.buffer],
    grid1d(total),
    p.build(),
  );
}
