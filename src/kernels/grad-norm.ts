/**
 * The global gradient norm without read-back: Σ x² over many tensors (multi-tensor dispatches,
 * one partial per workgroup, then a fixed-order final sum: deterministic) and the clip factor
 * min(1, maxNorm / (‖g‖ + 1e-6)) that adamwStep / sgdStep take as a grad-scale buffer.
 */
import { runtime } from '../gpu/runtime.js';
import { sizeOf } from '../core/shape.js';
import {
  CHUNK,
  checkF32,
  groupChain,
  groupsPerDispatch,
  launch,
  layoutFor,
  packDispatches,
  packTable,
  PER_THREAD,
  tableFields,
  WG,
  type MultiTensorOptions,
  type Slot,
} from './multi-tensor.js';
import { uniforms, type UniformLayout } from './uniforms.js';
import type { View } from './view.js';

const SUMSQ_OPERANDS: readonly Slot[] = [{ name: 'x', access: 'read' }];

/** Tree reduction of `red` (WG values) into red[0]; needs uniform control flow. */
const TREE_REDUCE = `  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    workgroupBarrier();
    if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
  }
  workgroupBarrier();`;

function partialSource(count: number): string {
  const decls = Array.from({ length: count }, (_, j) => `@group(0) @binding(${j}) var<storage, read> x${j}: array<f32>;`);
  const chain = groupChain(
    count,
    (j) => `    let n = params.group${j}_n; let o = params.group${j}_x_offset;
    let base = (w - params.group${j}_first) * CHUNK + lid;
    for (var e = 0u; e < PER_THREAD; e++) {
      let i = base + e * WG;
      if (i < n) { let a = x${j}[o + i]; acc = acc + a * a; }
    }`,
  );
  return `${decls.join('\n')}
@group(0) @binding(${count}) var<storage, read_write> partials: array<f32>;
${partialUniforms(count).wgsl(count + 1)}
const WG = ${WG}u;
const PER_THREAD = ${PER_THREAD}u;
const CHUNK = ${CHUNK}u;
var<workgroup> red: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let w = wid.x + wid.y * nwg.x;
  var acc = 0.0;
  ${chain}
  red[lid] = acc;
${TREE_REDUCE}
  if (lid == 0u && w < params.active_workgroups) { partials[params.first_partial + w] = red[0]; }
}`;
}

/** The partials of one dispatch start at `first_partial`; workgroups past `active_workgroups` have none. */
function partialUniforms(count: number): UniformLayout {
  return layoutFor(`sumsq|${count}`, () => tableFields({ first_partial: 'u32', active_workgroups: 'u32' }, count, SUMSQ_OPERANDS));
}

const FINAL_UNIFORMS = uniforms({ partials: 'u32', out_offset: 'u32' });
const FINAL_SOURCE = `@group(0) @binding(0) var<storage, read> partials: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
${FINAL_UNIFORMS.wgsl(2)}
const WG = ${WG}u;
var<workgroup> red: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32) {
  // Fixed order: thread lid sums lid, lid + WG, …
  var acc = 0.0;
  for (var i = lid; i < params.partials; i += WG) { acc = acc + partials[i]; }
  red[lid] = acc;
${TREE_REDUCE}
  if (lid == 0u) { out[params.out_offset] = red[0]; }
}`;

/**
 * Σ x² over all tensors into the 1-element f32 View `out`: one dispatch per k tensors writing a
 * partial per workgroup, then one workgroup adds the partials in a fixed order (deterministic).
 */
export function sumOfSquares(tensors: View[], out: View, opts: MultiTensorOptions = {}): void {
  const op = 'sumOfSquares';
  tensors.forEach((t, i) => checkF32(op, `tensors[${i}]`, t));
  checkF32(op, 'out', out, 1);
  const rt = runtime();
  const k = groupsPerDispatch(1, 1, opts);
  const chunks = packDispatches(
    op,
    tensors.map((t) => [t]),
    SUMSQ_OPERANDS,
    k,
    [],
  );
  const total = tensors.reduce((s, t) => s + Math.ceil(sizeOf(t.shape) / CHUNK), 0);
  const partials = rt.allocate(Math.max(total, 1) * 4, 'sumsq-partials');
  let first = 0;
  for (const chunk of chunks) {
    const values: Record<string, number> = { first_partial: first };
    const workgroups = packTable(values, chunk, SUMSQ_OPERANDS);
    values.active_workgroups = workgroups;
    const count = chunk.length;
    rt.dispatch(
      {
        key: `optim|sumsq-partial|g${count}|wg${WG}x${PER_THREAD}`,
        bindings: [...chunk.map(() => 'read' as const), 'write', 'uniform'],
        wgsl: () => partialSource(count),
      },
      [...chunk.map((g) => g[0].buffer), partials],
      launch(workgroups),
      partialUniforms(count).pack(values),
    );
    first += workgroups;
  }
  rt.dispatch(
    { key: `optim|sumsq-final|wg${WG}`, bindings: ['read', 'write', 'uniform'], wgsl: () => FINAL_SOURCE },
    [partials, out.buffer],
    [1],
    FINAL_UNIFORMS.pack({ partials: first, out_offset: out.offset }),
  );
  // Safe while the batch is pending: the pool reuses a buffer only after the submit that used it.
  rt.release(partials);
}

const CLIP_UNIFORMS = uniforms({ max_norm: 'f32', sumsq_offset: 'u32', out_offset: 'u32' });

/**
 * scale = min(1, maxNorm / (sqrt(sumsq) + 1e-6)) into `scaleOut` [1], on the GPU (no read-back);
 * pass scaleOut as gradScaleBuffer to adamwStep / sgdStep to clip by the global norm.
 */
export function clipScale(sumsq: View, maxNorm: number, scaleOut: View): void {
  const op = 'clipScale';
  checkF32(op, 'sumsq', sumsq, 1);
  checkF32(op, 'scaleOut', scaleOut, 1);
  const same = sumsq.buffer === scaleOut.buffer;
  const src = same ? 'io' : 'src';
  const wgsl =
    () => `${same ? '' : '@group(0) @binding(0) var<storage, read> src: array<f32>;\n'}@group(0) @binding(${same ? 0 : 1}) var<storage, read_write> io: array<f32>;
${CLIP_UNIFORMS.wgsl(same ? 1 : 2)}
@compute @workgroup_size(1)
fn main() {
  io[params.out_offset] = min(1.0, params.max_norm / (sqrt(${src}[params.sumsq_offset]) + 1e-6));
}`;
  runtime().dispatch(
    { key: `optim|clip-scale|${same ? 'aliased' : 'split'}`, bindings: same ? ['write', 'uniform'] : ['read', 'write', 'uniform'], wgsl },
    same ? [scaleOut.buffer] : [sumsq.buffer, scaleOut.buffer],
    [1],
    CLIP_UNIFORMS.pack({ max_norm: maxNorm, sumsq_offset: sumsq.offset, out_offset: scaleOut.offset }),
  );
}
