/**
 * One generic strided, broadcasting elementwise kernel: out[i] = expr(in0[i], …, in3[i]).
 * Operands may be any strided views (broadcast dims have stride 0); dims that are contiguous in
 * every operand are merged first, so the common case compiles to a rank-1 kernel with no index
 * arithmetic. Specialised on the expression, dtypes and merged rank.
 */
import { runtime } from '../gpu/runtime.js';
import type { DType } from '../core/dtype.js';
import { sizeOf } from '../core/shape.js';
import { enables, FLAT_INDEX, grid1d, Params, paramsDecl, WG } from './common.js';
import type { View } from './view.js';

export const MAX_RANK = 8;
/**
 * Elements per thread (grid-stride). Per-invocation overhead dominates small maps on lavapipe:
 * a 98k-element add took 1.17 ms with one element per thread and 0.48 ms with 16 (measured with
 * timestamp queries); 8 keeps enough threads for GPUs on medium tensors.
 */
const PER_THREAD = 8;
const MAX_INPUTS = 4;

/** Merges dims that are contiguous in every operand and drops size-1 dims. */
export function coalesce(shape: readonly number[], strides: (readonly number[])[]): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = outShape.length - 1;
    if (last >= 0 && strides.every((s, k) => outStrides[k][last] === s[d] * shape[d])) {
      outShape[last] *= shape[d];
      strides.forEach((s, k) => (outStrides[k][last] = s[d]));
    } else {
      outShape.push(shape[d]);
      strides.forEach((s, k) => outStrides[k].push(s[d]));
    }
  }
  return { shape: outShape, strides: outStrides };
}

/** Strides of `v` broadcast to `shape` (0 where broadcast). */
export function broadcastStrides(v: Pick<View, 'shape' | 'strides'>, shape: readonly number[]): number[] {
  const r = shape.length;
  const out = new Array<number>(r).fill(0);
  for (let i = 0; i < v.shape.length; i++) {
    const d = r - v.shape.length + i;
    out[d] = v.shape[i] === 1 && shape[d] !== 1 ? 0 : v.strides[i];
  }
  return out;
}

export interface MapSpec {
  /** WGSL expression over in0..in3 (already converted to the compute type) and s0..s3 (f32 scalars). */
  expr: string;
  /** Scalar type the expression computes in. */
  compute: 'f32' | 'i32' | 'u32';
  scalars?: number[];
  /** Extra WGSL functions the expression calls. */
  helpers?: string;
  name: string;
  /** The expression may read the output's current value as `acc` (in-place updates). */
  readsOutput?: boolean;
}

/**
 * Writes expr(inputs) into `out`, an output view of shape `shape` (contiguous or strided: the
 * same machinery indexes it, which is how in-place updates of slices work).
 */
export function mapInto(spec: MapSpec, inputs: View[], out: View): void {
  if (inputs.length > MAX_INPUTS) throw new Error(`${spec.name}: at most ${MAX_INPUTS} inputs`);
  const shape = out.shape;
  const n = sizeOf(shape);
  if (n === 0) return;
  const all = [out, ...inputs];
  const c = coalesce(
    shape,
    all.map((v, k) => (k === 0 ? v.strides : broadcastStrides(v, shape))),
  );
  const rank = c.shape.length;
  if (rank > MAX_RANK) throw new RangeError(`${spec.name}: rank ${rank} after merging dims exceeds ${MAX_RANK}`);
  const dtypes = all.map((v) => v.dtype);
  const key = `map|${spec.name}|${spec.expr}|${spec.compute}|${dtypes.join(',')}|r${rank}${spec.readsOutput ? '|acc' : ''}`;
  const nIn = inputs.length;
  runtime().dispatch(
    {
      key,
      bindings: [...inputs.map(() => 'read' as const), 'write', 'uniform'],
      wgsl: () => mapSource(spec, dtypes, rank, nIn),
    },
    [...inputs.map((v) => v.buffer), out.buffer],
    grid1d(Math.ceil(n / PER_THREAD)),
    packMapParams(n, c.shape, c.strides, all.map((v) => v.offset), spec.scalars ?? []),
  );
}

function packMapParams(n: number, shape: number[], strides: number[][], offsets: number[], scalars: number[]): Uint32Array {
  const p = new Params().u(n, shape.length, 0, 0);
  p.u(...shape).pad(4 + MAX_RANK);
  for (let k = 0; k < MAX_INPUTS + 1; k++) p.u(...(strides[k] ?? [])).pad(4 + MAX_RANK * (k + 2));
  p.u(...offsets).pad(4 + MAX_RANK * (MAX_INPUTS + 2) + 8);
  p.f(...scalars).pad(4 + MAX_RANK * (MAX_INPUTS + 2) + 12);
  return p.build();
}

const SHAPE_AT = 4;
const STRIDE_AT = (k: number) => 4 + MAX_RANK * (k + 1);
const OFFSET_AT = 4 + MAX_RANK * (MAX_INPUTS + 2);
const SCALAR_AT = OFFSET_AT + 8;
const PARAM_VEC4S = (SCALAR_AT + 4) / 4;

function mapSource(spec: MapSpec, dtypes: DType[], rank: number, nIn: number): string {
  const [outT, ...inT] = dtypes;
  const decls = inT.map((t, k) => `@group(0) @binding(${k}) var<storage, read> in${k}_buf: array<${t}>;`).join('\n');
  // Operand k's element offset: unrolled over the merged dims.
  const idx: string[] = [];
  for (let k = 0; k <= nIn; k++) idx.push(`var o${k} = pu(${OFFSET_AT + k}u);`);
  const walk: string[] = [];
  if (rank === 1) {
    // No index arithmetic beyond one multiply per operand (the common, contiguous case).
    for (let k = 0; k <= nIn; k++) walk.push(`o${k} += i * pu(${STRIDE_AT(k)}u);`);
  } else {
    walk.push('var rem = i;');
    for (let d = rank - 1; d >= 0; d--) {
      walk.push(`{ let sz = pu(${SHAPE_AT + d}u); let c = rem % sz; rem = rem / sz;`);
      for (let k = 0; k <= nIn; k++) walk.push(`  o${k} += c * pu(${STRIDE_AT(k) + d}u);`);
      walk.push('}');
    }
  }
  const loads = inT.map((_, k) => `  let in${k} = ${spec.compute}(in${k}_buf[o${k + 1}]);`).join('\n');
  const scalars = [0, 1, 2, 3].map((i) => `  let s${i} = pf(${SCALAR_AT + i}u);`).join('\n');
  return `${enables(dtypes)}${decls}
@group(0) @binding(${nIn}) var<storage, read_write> out_buf: array<${outT}>;
${paramsDecl(nIn + 1, PARAM_VEC4S)}
const WG = ${WG}u;
${spec.helpers ?? ''}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = ${FLAT_INDEX};
  let threads = nwg.x * nwg.y * WG;
  let n = pu(0u);
${scalars}
  for (var e = 0u; e < ${PER_THREAD}u; e++) {
  let i = first + e * threads;
  if (i >= n) { return; }
  ${idx.join('\n  ')}
  ${walk.join('\n  ')}
${loads}
${spec.readsOutput ? `  let acc = ${spec.compute}(out_buf[o0]);\n` : ''}  out_buf[o0] = ${outT}(${spec.expr});
  }
}`;
}

