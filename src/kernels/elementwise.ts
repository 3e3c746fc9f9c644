/**
 * One generic strided, broadcasting elementwise kernel: out[i] = expr(in0[i], …, in3[i]).
 * Operands may be any strided views (broadcast dims have stride 0); dims that are contiguous in
 * every operand are merged first, so the common case compiles to a rank-1 kernel with no index
 * arithmetic. Specialised on the expression, dtypes and merged rank.
 */
import { runtime } from '../gpu/runtime.js';
import type { DType } from '../core/dtype.js';
import { sizeOf } from '../core/shape.js';
import { enables, FLAT_INDEX, grid1d, WG } from './common.js';
import { uniforms, type UniformLayout } from './uniforms.js';
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
  /**
   * WGSL expression over in0..in3 (already converted to the compute type), s0..s3 (f32 scalars)
   * and `i`, the element's flat (row-major) index in the output as a u32 (arange uses it).
   */
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

/** A rank-1 map as a fusion pass sees it (src/kernels/fusion.ts). */
export interface MapFuse {
  spec: MapSpec;
  /** Output first, then the inputs. */
  dtypes: DType[];
  n: number;
  /** The dims after merging (rank ≥ 1); operands' strides are over these. */
  shape: number[];
  outOffset: number;
  outStrides: number[];
  inOffsets: number[];
  inStrides: number[][];
  scalars: number[];
}

/** Elements each thread of a map handles (fused maps launch the same grid). */
export const MAP_PER_THREAD = PER_THREAD;

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
  const lanes = rank && mapVec4 ? vec4Lanes(c.shape, out.offset, c.strides[0], inputs, c.strides.slice(1)) : null;
  const key = `map|${spec.name}|${spec.expr}|${spec.compute}|${dtypes.join(',')}|r${rank}${vec4KeyPart(lanes)}${spec.readsOutput ? '|acc' : ''}${helpersKey(spec.helpers)}`;
  const nIn = inputs.length;
  const layout = mapUniforms(rank, nIn);
  const values: Record<string, number | number[]> = { n, out_offset: out.offset, out_stride: c.strides[0], scalar: [0, 0, 0, 0] };
  if (rank > 1) values.shape = c.shape;
  for (let k = 0; k < nIn; k++) {
    values[`in${k}_offset`] = inputs[k].offset;
    values[`in${k}_stride`] = c.strides[k + 1];
  }
  (spec.scalars ?? []).forEach((x, i) => ((values.scalar as number[])[i] = x));
  const rt = runtime();
  // While a step is recorded, maps describe themselves so chains of them can be fused.
  // A scalar (rank 0) is described as one element of rank 1.
  const fuse: MapFuse | undefined = rt.recording
    ? {
        spec,
        dtypes,
        n,
        shape: rank ? c.shape : [1],
        outOffset: out.offset,
        outStrides: rank ? c.strides[0] : [1],
        inOffsets: inputs.map((v) => v.offset),
        inStrides: inputs.map((_, k) => (rank ? c.strides[k + 1] : [1])),
        scalars: [0, 1, 2, 3].map((i) => spec.scalars?.[i] ?? 0),
      }
    : undefined;
  rt.dispatch(
    {
      key,
      bindings: [...inputs.map(() => 'read' as const), 'write', 'uniform'],
      wgsl: () => mapSource(spec, dtypes, rank, nIn, lanes ?? undefined),
      fuse,
    },
    [...inputs.map((v) => v.buffer), out.buffer],
    grid1d(Math.ceil(n / PER_THREAD)),
    layout.pack(values),
  );
}

let mapVec4 = true;
/** Turns the vec4 maps (vec4Lanes) off and on again: for tests and benchmarks that compare the two kernels. */
export function setMapVec4(enabled: boolean): void {
  mapVec4 = enabled;
}

/**
 * How an operand of a map over dims `shape` (element i at offset + Σ c_d · strides[d]) can be read
 * four elements at a time along the innermost dim: 'vec4' when it is contiguous there and its
 * offset and outer strides are multiples of 4, 'splat' when it is broadcast there (stride 0: a
 * bias row, a per-row scale, a scalar: one element per vec4), else null. Either needs the
 * innermost size to be a multiple of 4.
 */
export function vec4Access(shape: readonly number[], offset: number, strides: readonly number[]): 'vec4' | 'splat' | null {
  const r = shape.length;
  if (r === 0 || shape[r - 1] % 4 !== 0) return null;
  if (strides[r - 1] === 0) return 'splat';
  if (strides[r - 1] !== 1 || offset % 4 !== 0) return null;
  return strides.every((st, d) => d === r - 1 || st % 4 === 0) ? 'vec4' : null;
}

/** An operand as vec4Access sees it: its dims, element offset and strides. */
export interface Vec4Operand {
  shape: readonly number[];
  offset: number;
  strides: readonly number[];
}

/**
 * The vec4 plan of a kernel over operands (vec4Access applied to each), or null: every output read
 * and written as vec4, each input as vec4 (true) or one element per vec4 (false). Maps (vec4Lanes)
 * and fused kernels (fusion-kernel.ts vec4Plan) both decide through this.
 */
export function vec4Operands(outs: readonly Vec4Operand[], ins: readonly Vec4Operand[]): boolean[] | null {
  if (outs.some((o) => vec4Access(o.shape, o.offset, o.strides) !== 'vec4')) return null;
  const plan: boolean[] = [];
  for (const x of ins) {
    const a = vec4Access(x.shape, x.offset, x.strides);
    if (!a) return null;
    plan.push(a === 'vec4');
  }
  return plan;
}

/** The part of a pipeline key that names a vec4 plan ('' without one). */
export const vec4KeyPart = (plan: readonly boolean[] | null): string => (plan ? `|v4${plan.map((v) => (v ? 'v' : 's')).join('')}` : '');

/**
 * The vec4 plan of a map over merged dims `shape` (vec4Operands, every operand over those dims).
 * On llvmpipe every storage access is a loop over the SIMD lanes and the index arithmetic runs per
 * element, so stepping by vec4 makes an eager [4096, 384] add 1.35-1.6x faster (three alternated
 * runs against the scalar kernel); on GPUs it is the usual 16-byte access.
 */
export function vec4Lanes(
  shape: readonly number[],
  outOffset: number,
  outStrides: readonly number[],
  inputs: Pick<View, 'offset'>[],
  inStrides: (readonly number[])[],
): boolean[] | null {
  return vec4Operands(
    [{ shape, offset: outOffset, strides: outStrides }],
    inputs.map((v, k) => ({ shape, offset: v.offset, strides: inStrides[k] })),
  );
}

/**
 * The helpers are part of the source, so they are part of the key: each distinct helper text
 * gets a small id (the library's text is one string object, so the lookup is cheap per dispatch).
 */
const helperIds = new Map<string, number>();
function helpersKey(helpers: string | undefined): string {
  if (!helpers) return '';
  let id = helperIds.get(helpers);
  if (id === undefined) helperIds.set(helpers, (id = helperIds.size));
  return `|h${id}`;
}

const layouts = new Map<string, UniformLayout>();

/**
 * Parameters of a map over `nIn` inputs and `rank` merged dims: the element count, each
 * operand's offset and strides, the dims (rank > 1 only) and the expression's scalars s0..s3.
 */
function mapUniforms(rank: number, nIn: number): UniformLayout {
  const key = `${rank}|${nIn}`;
  let l = layouts.get(key);
  if (!l) {
    const fields: Record<string, 'u32' | readonly ['u32' | 'f32', number]> = { n: 'u32' };
    if (rank > 1) fields.shape = ['u32', rank];
    fields.out_offset = 'u32';
    fields.out_stride = ['u32', rank];
    for (let k = 0; k < nIn; k++) {
      fields[`in${k}_offset`] = 'u32';
      fields[`in${k}_stride`] = ['u32', rank];
    }
    fields.scalar = ['f32', 4];
    l = uniforms(fields);
    layouts.set(key, l);
  }
  return l;
}

/**
 * A map's WGSL. Without `lanes`, one element per step: its offset in every operand over the merged
 * dims, then the expression. With `lanes` (vec4Lanes) the map steps by vec4 along the innermost
 * dim: each invocation handles PER_THREAD / 4 vec4s (the same grid), the offsets are those of the
 * vec4's first element (the innermost dim counted in vec4s), the expression runs per component in
 * the compute type with `i` the element's flat index, and at rank 1 a broadcast input is one
 * element for the whole map, loaded once. Offsets and strides in the uniforms stay in elements.
 */
export function mapSource(spec: MapSpec, dtypes: DType[], rank: number, nIn: number, lanes?: boolean[]): string {
  const [outT, ...inT] = dtypes;
  const vec4 = lanes !== undefined;
  // Operand 0 is the output, k > 0 input k − 1; isVec: read or written as vec4.
  const name = (k: number) => (k === 0 ? 'out' : `in${k - 1}`);
  const isVec = (k: number) => vec4 && (k === 0 || lanes[k - 1]);
  const elem = (t: DType, k: number) => (isVec(k) ? `vec4<${t}>` : t);
  const decls = inT.map((t, k) => `@group(0) @binding(${k}) var<storage, read> in${k}_buf: array<${elem(t, k + 1)}>;`).join('\n');
  // At rank 1 a vec4 map's broadcast inputs have no offset to walk: they are loaded once (hoisted).
  const hoist = (k: number) => vec4 && rank === 1 && k > 0 && !isVec(k);
  const step = vec4 ? 'i4' : 'i';
  const walk: string[] = [];
  for (let k = 0; k <= nIn; k++) if (!hoist(k)) walk.push(`var o${k} = params.${name(k)}_offset;`);
  if (rank === 1) {
    // No index arithmetic beyond one multiply per operand (the common, contiguous case).
    for (let k = 0; k <= nIn; k++) if (!hoist(k)) walk.push(vec4 ? `o${k} += 4u * i4;` : `o${k} += i * params.${name(k)}_stride_0;`);
  } else {
    walk.push(`var rem = ${step};`);
    for (let d = rank - 1; d >= 0; d--) {
      const inner = vec4 && d === rank - 1;
      walk.push(`{ let sz = params.shape_${d}${inner ? ' / 4u' : ''}; let c = rem % sz; rem = rem / sz;`);
      for (let k = 0; k <= nIn; k++) {
        if (!inner) walk.push(`  o${k} += c * params.${name(k)}_stride_${d};`);
        else if (isVec(k)) walk.push(`  o${k} += 4u * c;`);
      }
      walk.push('}');
    }
  }
  const hoisted = inT.map((_, k) => (hoist(k + 1) ? `  let in${k} = ${spec.compute}(in${k}_buf[params.in${k}_offset]);\n` : '')).join('');
  // Loads: vec4 operands as v<k>, the others converted to the compute type as in<k>.
  const loads = inT
    .map((_, k) =>
      hoist(k + 1)
        ? ''
        : isVec(k + 1)
          ? `    let v${k} = in${k}_buf[o${k + 1} / 4u];\n`
          : `    let in${k} = ${spec.compute}(in${k}_buf[o${k + 1}]);\n`,
    )
    .join('');
  let body: string;
  if (!vec4) {
    body = `${spec.readsOutput ? `    let acc = ${spec.compute}(out_buf[o0]);\n` : ''}    out_buf[o0] = ${outT}(${spec.expr});`;
  } else {
    const comps = ['x', 'y', 'z', 'w'].map((c, ci) => {
      const ins = inT.map((_, k) => (isVec(k + 1) ? `let in${k} = ${spec.compute}(v${k}.${c}); ` : '')).join('');
      const acc = spec.readsOutput ? `let acc = ${spec.compute}(va.${c}); ` : '';
      return `    { let i = 4u * i4 + ${ci}u; ${ins}${acc}r.${c} = ${outT}(${spec.expr}); }`;
    });
    body = `${spec.readsOutput ? '    let va = out_buf[o0 / 4u];\n' : ''}    var r: vec4<${outT}>;
${comps.join('\n')}
    out_buf[o0 / 4u] = r;`;
  }
  const scalars = [0, 1, 2, 3].map((i) => `  let s${i} = params.scalar_${i};`).join('\n');
  const count = vec4 ? 'n4' : 'n';
  return `${enables(dtypes)}${decls}
@group(0) @binding(${nIn}) var<storage, read_write> out_buf: array<${elem(outT, 0)}>;
${mapUniforms(rank, nIn).wgsl(nIn + 1)}
const WG = ${WG}u;
${spec.helpers ?? ''}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = ${FLAT_INDEX};
  let threads = nwg.x * nwg.y * WG;
  let ${count} = params.n${vec4 ? ' / 4u' : ''};
${scalars}
${hoisted}  for (var e = 0u; e < ${vec4 ? PER_THREAD / 4 : PER_THREAD}u; e++) {
    let ${step} = first + e * threads;
    if (${step} >= ${count}) { return; }
    ${walk.join('\n    ')}
${loads}${body}
  }
}`;
}
