/**
 * Fusion of elementwise maps in a recorded step (src/gpu/recorder.ts calls fuseMaps before it
 * plans memory). A map whose result is an intermediate read by exactly one later map, element for
 * element (same count, unit strides, same offset), is computed inside that map instead: the pair
 * becomes one generated kernel, and chains grow one producer at a time. The intermediate is then
 * never written.
 *
 * Soundness: the producer's inputs must not be written by any command between the two, so that
 * computing it later reads the same values; and neither map may read its own output.
 *
 * Rounding: each stage still converts its result to the intermediate's dtype, exactly as storing
 * and loading it did, but the shader compiler may now contract a multiply in one stage with an
 * add in the next (an FMA), so fused results can differ from eager ones in the last bits.
 */
import type { DType } from '../core/dtype.js';
import type { Cmd, DispatchCmd, ValueInfo } from '../gpu/recorder.js';
import type { BindingKind, KernelSource } from '../gpu/pipeline-cache.js';
import { enables, FLAT_INDEX, WG } from './common.js';
import { MAP_PER_THREAD, type MapFuse, type MapSpec } from './elementwise.js';
import { MAX_UNIFORM_BYTES, uniforms, type UniformLayout } from './uniforms.js';

/** Storage buffers a fused kernel reads (one more is written); within every adapter's limit of 8. */
const MAX_FUSED_INPUTS = 6;
/** Stages per fused kernel: the uniform slot holds 4 scalars per stage. */
const MAX_STAGES = 8;

/** An operand a stage reads: input k of the fused kernel, or the result of an earlier stage. */
type Ref = { input: number } | { stage: number };

interface Stage {
  spec: MapSpec;
  /** Output dtype, then the dtype each input is loaded as. */
  dtypes: DType[];
  refs: Ref[];
  scalars: number[];
}

/**
 * An operand in memory: element i (row-major over `shape`, the dims of the map that reads or
 * writes it) is at offset + Σ c_d · strides[d], c the coordinates of i in `shape`.
 */
interface Operand {
  value: number;
  dtype: DType;
  offset: number;
  shape: number[];
  strides: number[];
}

/** A fused map: inputs, stages in order, the last one stored; all iterate the same n elements. */
interface Fused {
  n: number;
  inputs: Operand[];
  stages: Stage[];
  out: Operand;
}

function fromMap(c: DispatchCmd, f: MapFuse): Fused {
  const op = (value: number, dtype: DType, offset: number, strides: number[]): Operand => ({
    value,
    dtype,
    offset,
    shape: f.shape,
    strides,
  });
  return {
    n: f.n,
    inputs: f.inOffsets.map((offset, k) => op(c.values[k], f.dtypes[k + 1], offset, f.inStrides[k])),
    stages: [{ spec: f.spec, dtypes: f.dtypes, refs: f.inOffsets.map((_, k) => ({ input: k })), scalars: f.scalars }],
    out: op(c.values[f.inOffsets.length], f.dtypes[0], f.outOffset, f.outStrides),
  };
}

/** Whether element i of the operand is at offset + i (row-major contiguous over its dims). */
function contiguous(o: Operand): boolean {
  let expect = 1;
  for (let d = o.shape.length - 1; d >= 0; d--) {
    if (o.shape[d] !== 1 && o.strides[d] !== expect) return false;
    expect *= o.shape[d];
  }
  return true;
}

const sameOperand = (x: Operand, y: Operand) =>
  x.value === y.value &&
  x.dtype === y.dtype &&
  x.offset === y.offset &&
  x.shape.length === y.shape.length &&
  x.shape.every((d, k) => d === y.shape[k] && x.strides[k] === y.strides[k]);

/** `consumer` with its input `slot` replaced by `producer`'s computation, or null if it would not fit. */
function merge(producer: Fused, consumer: Fused, slot: number): Fused | null {
  if (producer.stages.length + consumer.stages.length > MAX_STAGES) return null;
  // Helper texts are included once each; two different ones might declare the same function.
  const helpers = new Set([...producer.stages, ...consumer.stages].map((s) => s.spec.helpers).filter((h) => h));
  if (helpers.size > 1) return null;
  const inputs = [...producer.inputs];
  const find = (x: Operand) => inputs.findIndex((y) => sameOperand(x, y));
  // Consumer inputs other than the fused one, deduplicated against the producer's.
  const remap = consumer.inputs.map((x, k) => {
    if (k === slot) return -1;
    let i = find(x);
    if (i < 0) i = inputs.push(x) - 1;
    return i;
  });
  if (inputs.length > MAX_FUSED_INPUTS) return null;
  const out = { n: consumer.n, inputs, stages: [] as Stage[], out: consumer.out };
  if (uniformBytes(out, producer.stages.length + consumer.stages.length) > MAX_UNIFORM_BYTES) return null;
  const base = producer.stages.length;
  const last = base - 1;
  const shifted = consumer.stages.map((s) => ({
    ...s,
    refs: s.refs.map(
      (r): Ref => ('stage' in r ? { stage: r.stage + base } : r.input === slot ? { stage: last } : { input: remap[r.input] }),
    ),
  }));
  out.stages = [...producer.stages, ...shifted];
  return out;
}

function uniformBytes(f: Fused, stages: number): number {
  const words =
    1 + [f.out, ...f.inputs].reduce((s, o) => s + 1 + o.strides.length + (o.shape.length > 1 ? o.shape.length : 0), 0) + 4 * stages;
  return Math.ceil((4 * words) / 16) * 16;
}

/** The fused kernel: its source, key and parameters. */
function emit(f: Fused): { src: KernelSource; params: Uint32Array } {
  const ranks = [f.out, ...f.inputs].map((o) => o.shape.length);
  const layout = fusedUniforms(ranks, f.stages.length);
  const key = `fused|r${ranks.join(',')}|${f.inputs.map((x) => x.dtype).join(',')}>${f.out.dtype}|${f.stages
    .map(
      (s) =>
        `${s.spec.name}{${s.spec.expr}}${s.spec.compute}${s.spec.readsOutput ? '|acc' : ''}|${s.dtypes.join(',')}|${s.refs.map((r) => ('stage' in r ? `t${r.stage}` : `i${r.input}`)).join(',')}|${helperKey(s.spec.helpers)}`,
    )
    .join(';')}`;
  const values: Record<string, number | number[]> = { n: f.n };
  [f.out, ...f.inputs].forEach((o, k) => {
    const name = k === 0 ? 'out' : `in${k - 1}`;
    values[`${name}_offset`] = o.offset;
    values[`${name}_stride`] = o.strides;
    if (o.shape.length > 1) values[`${name}_shape`] = o.shape;
  });
  f.stages.forEach((s, j) => (values[`st${j}`] = s.scalars));
  const bindings: BindingKind[] = [...f.inputs.map(() => 'read' as const), 'write', 'uniform'];
  return { src: { key, bindings, wgsl: () => fusedSource(f, layout) }, params: layout.pack(values) };
}

const helperKeys = new Map<string, number>();
function helperKey(h: string | undefined): string {
  if (!h) return '';
  let id = helperKeys.get(h);
  if (id === undefined) helperKeys.set(h, (id = helperKeys.size));
  return `h${id}`;
}

const layouts = new Map<string, UniformLayout>();
/** ranks: the output's, then each input's. */
function fusedUniforms(ranks: number[], stages: number): UniformLayout {
  const key = `${ranks.join(',')}|${stages}`;
  let l = layouts.get(key);
  if (!l) {
    const fields: Record<string, 'u32' | readonly ['u32' | 'f32', number]> = { n: 'u32' };
    ranks.forEach((r, k) => {
      const name = k === 0 ? 'out' : `in${k - 1}`;
      fields[`${name}_offset`] = 'u32';
      fields[`${name}_stride`] = ['u32', r];
      if (r > 1) fields[`${name}_shape`] = ['u32', r];
    });
    for (let j = 0; j < stages; j++) fields[`st${j}`] = ['f32', 4];
    l = uniforms(fields);
    layouts.set(key, l);
  }
  return l;
}

/** WGSL for the element offset of operand `name` (rank r) at flat index i. */
function index(name: string, r: number): string {
  if (r === 1) return `params.${name}_offset + i * params.${name}_stride_0`;
  const parts = [`var o = params.${name}_offset;`, 'var rem = i;'];
  for (let d = r - 1; d >= 0; d--)
    parts.push(`o += (rem % params.${name}_shape_${d}) * params.${name}_stride_${d}; rem = rem / params.${name}_shape_${d};`);
  return `${name}_at(i)|fn ${name}_at(i: u32) -> u32 { ${parts.join(' ')} return o; }`;
}

/** Renames a stage's `in<k>` / `s<k>` so stages do not collide. */
const rename = (expr: string, j: number) => expr.replace(/\bin(\d)\b/g, `x${j}_in$1`).replace(/\bs(\d)\b/g, `x${j}_s$1`);

function fusedSource(f: Fused, layout: UniformLayout): string {
  const nIn = f.inputs.length;
  const decls = f.inputs.map((x, k) => `@group(0) @binding(${k}) var<storage, read> in${k}_buf: array<${x.dtype}>;`).join('\n');
  const helpers = [...new Set(f.stages.map((s) => s.spec.helpers ?? ''))];
  // Each operand's offset: inline for rank 1, a function walking its dims otherwise.
  const at = [f.out, ...f.inputs].map((o, k) => {
    const [expr, fn] = index(k === 0 ? 'out' : `in${k - 1}`, o.shape.length).split('|');
    if (fn) helpers.push(fn);
    return expr;
  });
  const body: string[] = [];
  f.stages.forEach((s, j) => {
    s.refs.forEach((r, k) => {
      const raw = 'stage' in r ? `t${r.stage}` : `in${r.input}_buf[${at[r.input + 1]}]`;
      body.push(`let x${j}_in${k} = ${s.spec.compute}(${raw});`);
    });
    for (let k = 0; k < 4; k++) body.push(`let x${j}_s${k} = params.st${j}_${k};`);
    // Only the last stage may read the output (fuseMaps never makes an accumulating map a producer).
    if (s.spec.readsOutput) body.push(`let acc = ${s.spec.compute}(out_buf[${at[0]}]);`);
    // The stage's result in its output dtype, as storing it would have left it.
    body.push(`let t${j} = ${s.dtypes[0]}(${rename(s.spec.expr, j)});`);
  });
  const all = [f.out.dtype, ...f.inputs.map((x) => x.dtype), ...f.stages.flatMap((s) => s.dtypes)];
  return `${enables(all)}${decls}
@group(0) @binding(${nIn}) var<storage, read_write> out_buf: array<${f.out.dtype}>;
${layout.wgsl(nIn + 1)}
const WG = ${WG}u;
${helpers.join('\n')}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = ${FLAT_INDEX};
  let threads = nwg.x * nwg.y * WG;
  let n = params.n;
  for (var e = 0u; e < ${MAP_PER_THREAD}u; e++) {
    let i = first + e * threads;
    if (i >= n) { return; }
    ${body.join('\n    ')}
    out_buf[${at[0]}] = t${f.stages.length - 1};
  }
}`;
}

/** Values each command writes (bindings declared 'write', or a copy's destination). */
function written(c: Cmd): number[] {
  if (c.kind === 'copy') return [c.dst];
  return c.values.filter((_, k) => c.src.bindings[k] === 'write');
}

/**
 * Fuses chains of elementwise maps (see the file comment). Returns the new command list;
 * dispatches it makes have `kernel: null` (the recorder compiles them).
 */
export function fuseMaps(cmds: readonly Cmd[], values: readonly ValueInfo[]): Cmd[] {
  const list: (Cmd | null)[] = [...cmds];
  const fused = new Map<number, Fused>();
  const asFused = (n: number): Fused | null => {
    const c = list[n];
    if (c?.kind !== 'dispatch') return null;
    const got = fused.get(n);
    if (got) return got;
    const f = c.src.fuse as MapFuse | undefined;
    return f?.spec && !c.dynamic ? fromMap(c, f) : null;
  };
  // Uses of each value: the commands that bind it.
  const uses = new Map<number, number[]>();
  list.forEach((c, n) => {
    const ids = c!.kind === 'dispatch' ? c!.values : [c!.src, c!.dst];
    for (const id of new Set(ids)) {
      let u = uses.get(id);
      if (!u) uses.set(id, (u = []));
      u.push(n);
    }
  });
  for (let b = 0; b < list.length; b++) {
    let consumer = asFused(b);
    if (!consumer) continue;
    // Pull in producers while one of the consumer's inputs is a single-use intermediate made by a map.
    for (let changed = true; changed; ) {
      changed = false;
      for (let slot = 0; slot < consumer.inputs.length; slot++) {
        const inp = consumer.inputs[slot];
        const u = uses.get(inp.value)!;
        if (!values[inp.value].intermediate || u.length !== 2 || u[1] !== b) continue;
        // Read once by the consumer (x·x would need it twice).
        if (consumer.inputs.filter((x) => x.value === inp.value).length !== 1) continue;
        const a = u[0];
        const producer = asFused(a);
        if (!producer || producer.out.value !== inp.value || producer.n !== consumer.n) continue;
        // A map that accumulates into its output (acc) can only be the last stage.
        if (producer.stages.some((st) => st.spec.readsOutput)) continue;
        // Element i of the intermediate is at offset + i for both (so the fused map computes it where it is read).
        if (!contiguous(producer.out) || !contiguous(inp) || producer.out.offset !== inp.offset || producer.out.dtype !== inp.dtype)
          continue;
        // The producer's inputs must hold the same values at b as at a.
        const reads = new Set(producer.inputs.map((x) => x.value));
        let clobbered = false;
        for (let k = a + 1; k < b && !clobbered; k++) {
          const c = list[k];
          if (c && written(c).some((v) => reads.has(v))) clobbered = true;
        }
        // One dispatch may not read and write the same buffer.
        if (clobbered || reads.has(consumer.out.value)) continue;
        const m = merge(producer, consumer, slot);
        if (!m) continue;
        consumer = m;
        list[a] = null;
        fused.delete(a);
        // The producer's inputs are now used at b (uses lists stay sorted: a < b).
        for (const x of producer.inputs) {
          const ux = uses.get(x.value)!;
          const i = ux.indexOf(a);
          if (i >= 0) ux.splice(i, 1);
          if (!ux.includes(b)) ux.push(b);
          ux.sort((p, q) => p - q);
        }
        uses.set(inp.value, []);
        fused.set(b, consumer);
        changed = true;
        break;
      }
    }
  }
  const out: Cmd[] = [];
  list.forEach((c, n) => {
    if (!c) return;
    const f = fused.get(n);
    if (!f || c.kind !== 'dispatch') {
      out.push(c);
      return;
    }
    const { src, params } = emit(f);
    out.push({
      kind: 'dispatch',
      kernel: null,
      src,
      key: src.key,
      values: [...f.inputs.map((x) => x.value), f.out.value],
      workgroups: c.workgroups,
      params: new Uint8Array(params.buffer),
      dynamic: null,
    });
  });
  return out;
}
