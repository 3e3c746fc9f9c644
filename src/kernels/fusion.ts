/**
 * Fusion of elementwise maps in a recorded step (src/gpu/recorder.ts calls fuseMaps before it
 * plans memory). Maps that iterate the same number of elements are merged into one generated
 * kernel with several outputs when nothing recorded between them gets in the way:
 *
 * - a map reading another's result element for element (same count, same layout) computes it
 *   in registers; the intermediate is still stored when a later command reads it, and never
 *   written when it lives only in the step and the fused kernel is its only reader;
 * - maps that merely sit near each other (the three gradients of one backward rule, a map next
 *   to a gradient accumulation) share one dispatch, each storing its own result.
 *
 * Soundness: the merged kernel runs at the position of one of the two; the other's inputs must
 * not be written, and its outputs not read or written, by any command in between. One kernel
 * never reads a value it writes (except an accumulating map reading its own output at its own
 * element), and two maps of one kernel never write the same value.
 *
 * Rounding: each stage still converts its result to its output's dtype, exactly as storing and
 * loading it did, but the shader compiler may now contract a multiply in one stage with an add in
 * the next (an FMA), so fused results can differ from eager ones in the last bits.
 */
import type { DType } from '../core/dtype.js';
import type { Cmd, DispatchCmd, ValueInfo } from '../gpu/recorder.js';
import type { BindingKind, KernelSource } from '../gpu/pipeline-cache.js';
import { runtime } from '../gpu/runtime.js';
import { enables, FLAT_INDEX, grid1d, WG } from './common.js';
import { MAP_PER_THREAD, type MapFuse, type MapSpec } from './elementwise.js';
import { type ColumnsReduceFuse, groupColumnsReduce } from './reduce-columns.js';
import { pairRope, type RopeFuse } from './rope.js';
import { MAX_UNIFORM_BYTES, uniforms, type UniformLayout } from './uniforms.js';

/** Storage buffers one fused kernel binds (inputs and outputs), below the adapter's limit. */
const MAX_FUSED_BINDINGS = 10;
/** Stages per fused kernel (the generated source and the uniform grow with them). */
const MAX_STAGES = 12;
/** How far back (in commands) a map looks for a kernel to join. */
const WINDOW = 24;

/** An operand a stage reads: input k of the fused kernel, or the result of an earlier stage. */
type Ref = { input: number } | { stage: number };

interface Stage {
  spec: MapSpec;
  /** Output dtype, then the dtype each input is loaded as. */
  dtypes: DType[];
  refs: Ref[];
  scalars: number[];
  /** The output this stage stores (index into Fused.outs), or null: its result only feeds later stages. */
  out: number | null;
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

/** A fused kernel: inputs, outputs, stages in order; every stage iterates the same n elements. */
interface Fused {
  n: number;
  inputs: Operand[];
  outs: Operand[];
  stages: Stage[];
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
    outs: [op(c.values[f.inOffsets.length], f.dtypes[0], f.outOffset, f.outStrides)],
    stages: [{ spec: f.spec, dtypes: f.dtypes, refs: f.inOffsets.map((_, k) => ({ input: k })), scalars: f.scalars, out: 0 }],
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

/** Whether element i of x and of y is the same memory element for every i (both iterate n elements). */
const sameElements = (x: Operand, y: Operand) =>
  sameOperand(x, y) || (x.value === y.value && x.dtype === y.dtype && x.offset === y.offset && contiguous(x) && contiguous(y));

/** The element offsets an operand covers. */
function elements(o: Operand): Set<number> {
  const out = new Set<number>();
  const n = o.shape.reduce((p, d) => p * d, 1);
  for (let i = 0; i < n; i++) {
    let off = o.offset;
    let rem = i;
    for (let d = o.shape.length - 1; d >= 0; d--) {
      off += (rem % o.shape[d]) * o.strides[d];
      rem = Math.floor(rem / o.shape[d]);
    }
    out.add(off);
  }
  return out;
}

function disjoint(x: Operand, y: Operand): boolean {
  const ex = elements(x);
  for (const e of elements(y)) if (ex.has(e)) return false;
  return true;
}

/** `b` appended to `a` as one kernel (b's reads of a's outputs become stage results), or null if it would not fit. */
function merge(a: Fused, b: Fused, maxBindings: number): Fused | null {
  if (a.n !== b.n || a.stages.length + b.stages.length > MAX_STAGES) return null;
  // Helper texts are included once each; two different ones might declare the same function.
  const helpers = new Set([...a.stages, ...b.stages].map((s) => s.spec.helpers).filter((h) => h));
  if (helpers.size > 1) return null;
  const aOut = new Set(a.outs.map((o) => o.value));
  const aIn = new Set(a.inputs.map((x) => x.value));
  const bIn = new Set(b.inputs.map((x) => x.value));
  // One kernel never reads what it writes; two stages may write one value only at disjoint elements
  // (windows of one gradient), and then neither reads it.
  for (const o of b.outs) {
    if (aIn.has(o.value)) return null;
    if (!aOut.has(o.value)) continue;
    if (bIn.has(o.value) || !a.outs.every((y) => y.value !== o.value || disjoint(o, y))) return null;
  }
  const inputs = [...a.inputs];
  const refOf: Ref[] = [];
  for (const x of b.inputs) {
    if (aOut.has(x.value)) {
      if (b.outs.some((o) => o.value === x.value)) return null;
      const o = a.outs.findIndex((y) => sameElements(x, y));
      if (o < 0) return null;
      refOf.push({ stage: a.stages.findIndex((s) => s.out === o) });
      continue;
    }
    let i = inputs.findIndex((y) => sameOperand(x, y));
    if (i < 0) i = inputs.push(x) - 1;
    refOf.push({ input: i });
  }
  const outs = [...a.outs, ...b.outs];
  if (inputs.length + new Set(outs.map((o) => o.value)).size > maxBindings) return null;
  const base = a.stages.length;
  const stages = [
    ...a.stages,
    ...b.stages.map((s) => ({
      ...s,
      out: s.out === null ? null : s.out + a.outs.length,
      refs: s.refs.map((r): Ref => ('stage' in r ? { stage: r.stage + base } : refOf[r.input])),
    })),
  ];
  const m = { n: a.n, inputs, outs, stages };
  return layoutOf(m).bytes > MAX_UNIFORM_BYTES ? null : m;
}

/** Scalars s0..s3 an expression uses (only those get uniform words). */
function scalarCount(expr: string): number {
  let n = 0;
  for (const m of expr.matchAll(/\bs(\d)\b/g)) n = Math.max(n, Number(m[1]) + 1);
  return n;
}

/** The distinct values the outputs write (one binding each), and each output's entry. */
function outBindings(f: Fused): { values: number[]; of: number[] } {
  const values: number[] = [];
  const of = f.outs.map((o) => {
    let j = values.indexOf(o.value);
    if (j < 0) j = values.push(o.value) - 1;
    return j;
  });
  return { values, of };
}

/** Operand names in uniform order: outputs out0…, inputs in0…. */
const names = (f: Fused) => [...f.outs.map((_, k) => `out${k}`), ...f.inputs.map((_, k) => `in${k}`)];

/** The distinct dims (of rank > 1) the operands are indexed over, and each operand's entry (−1: rank 1). */
function shapeTable(f: Fused): { shapes: number[][]; of: number[] } {
  const shapes: number[][] = [];
  const of = [...f.outs, ...f.inputs].map((o) => {
    if (o.shape.length === 1) return -1;
    let j = shapes.findIndex((s) => s.length === o.shape.length && s.every((d, k) => d === o.shape[k]));
    if (j < 0) j = shapes.push(o.shape) - 1;
    return j;
  });
  return { shapes, of };
}

/** The uniform fields of a fused kernel, a key for them, and their size. */
function layoutOf(f: Fused): { fields: Record<string, 'u32' | readonly ['u32' | 'f32', number]>; key: string; bytes: number } {
  const { shapes } = shapeTable(f);
  const fields: Record<string, 'u32' | readonly ['u32' | 'f32', number]> = { n: 'u32' };
  shapes.forEach((s, j) => (fields[`shape${j}`] = ['u32', s.length]));
  const ops = [...f.outs, ...f.inputs];
  names(f).forEach((name, k) => {
    fields[`${name}_offset`] = 'u32';
    fields[`${name}_stride`] = ['u32', ops[k].shape.length];
  });
  f.stages.forEach((s, j) => {
    const c = scalarCount(s.spec.expr);
    if (c) fields[`st${j}`] = ['f32', c];
  });
  const key = Object.entries(fields)
    .map(([k, t]) => `${k}${typeof t === 'string' ? '' : t[1]}`)
    .join(',');
  const words = Object.values(fields).reduce((s, t) => s + (typeof t === 'string' ? 1 : t[1]), 0);
  return { fields, key, bytes: Math.max(16, Math.ceil((4 * words) / 16) * 16) };
}

const layouts = new Map<string, UniformLayout>();
function uniformLayout(f: Fused): UniformLayout {
  const { fields, key } = layoutOf(f);
  let l = layouts.get(key);
  if (!l) layouts.set(key, (l = uniforms(fields)));
  return l;
}

const helperKeys = new Map<string, number>();
function helperKey(h: string | undefined): string {
  if (!h) return '';
  let id = helperKeys.get(h);
  if (id === undefined) helperKeys.set(h, (id = helperKeys.size));
  return `h${id}`;
}

/** The fused kernel: its source, key, bindings and parameters. */
function emit(f: Fused): { src: KernelSource; params: Uint32Array; values: number[] } {
  const layout = uniformLayout(f);
  const { shapes, of } = shapeTable(f);
  const ops = [...f.outs, ...f.inputs];
  const operands = ops.map((o, k) => `${o.shape.length}s${of[k]}${o.dtype}`).join(',');
  const stages = f.stages
    .map(
      (s) =>
        `${s.spec.name}{${s.spec.expr}}${s.spec.compute}${s.spec.readsOutput ? '|acc' : ''}|${s.dtypes.join(',')}|${s.refs.map((r) => ('stage' in r ? `t${r.stage}` : `i${r.input}`)).join(',')}>${s.out ?? '-'}|${helperKey(s.spec.helpers)}`,
    )
    .join(';');
  const ob = outBindings(f);
  const key = `fused|o${f.outs.length}b${ob.of.join('.')}i${f.inputs.length}|${operands}|${stages}`;
  const values: Record<string, number | number[]> = { n: f.n };
  shapes.forEach((s, j) => (values[`shape${j}`] = s));
  names(f).forEach((name, k) => {
    values[`${name}_offset`] = ops[k].offset;
    values[`${name}_stride`] = ops[k].strides;
  });
  f.stages.forEach((s, j) => {
    const c = scalarCount(s.spec.expr);
    if (c) values[`st${j}`] = s.scalars.slice(0, c);
  });
  const bindings: BindingKind[] = [...f.inputs.map(() => 'read' as const), ...ob.values.map(() => 'write' as const), 'uniform'];
  return {
    src: { key, bindings, wgsl: () => fusedSource(f, layout) },
    params: layout.pack(values),
    values: [...f.inputs.map((x) => x.value), ...ob.values],
  };
}

/**
 * WGSL for the element offset of operand `name` at flat index i: rank 1 inline; otherwise over
 * the coordinates c<shape>_<d> of i, computed once per distinct shape (integer division is the
 * costly part on CPU adapters, so operands sharing dims share it).
 */
function index(name: string, rank: number, shape: number): string {
  if (rank === 1) return `(params.${name}_offset + i * params.${name}_stride_0)`;
  const terms = Array.from({ length: rank }, (_, d) => `c${shape}_${d} * params.${name}_stride_${d}`);
  return `(params.${name}_offset + ${terms.join(' + ')})`;
}

/** Statements computing the coordinates c<j>_<d> of flat index i in shape j. */
function coordinates(j: number, rank: number): string {
  const parts = [`var rem${j} = i;`];
  for (let d = rank - 1; d > 0; d--)
    parts.push(`let c${j}_${d} = rem${j} % params.shape${j}_${d}; rem${j} = rem${j} / params.shape${j}_${d};`);
  parts.push(`let c${j}_0 = rem${j};`);
  return parts.join(' ');
}

/** Renames a stage's `in<k>`, `s<k>` and `acc` so stages do not collide. */
const rename = (expr: string, j: number) =>
  expr
    .replace(/\bin(\d)\b/g, `x${j}_in$1`)
    .replace(/\bs(\d)\b/g, `x${j}_s$1`)
    .replace(/\bacc\b/g, `x${j}_acc`);

function fusedSource(f: Fused, layout: UniformLayout): string {
  const nIn = f.inputs.length;
  const { shapes, of } = shapeTable(f);
  const ob = outBindings(f);
  const decls = [
    ...f.inputs.map((x, k) => `@group(0) @binding(${k}) var<storage, read> in${k}_buf: array<${x.dtype}>;`),
    ...ob.values.map(
      (_, j) => `@group(0) @binding(${nIn + j}) var<storage, read_write> b${j}_buf: array<${f.outs[ob.of.indexOf(j)].dtype}>;`,
    ),
  ].join('\n');
  const helpers = [...new Set(f.stages.map((s) => s.spec.helpers ?? ''))];
  const ops = [...f.outs, ...f.inputs];
  const at = names(f).map((name, k) => index(name, ops[k].shape.length, of[k]));
  const outAt = (k: number) => at[k];
  const inAt = (k: number) => at[f.outs.length + k];
  const body: string[] = shapes.map((sh, j) => coordinates(j, sh.length));
  f.stages.forEach((s, j) => {
    s.refs.forEach((r, k) => {
      const raw = 'stage' in r ? `t${r.stage}` : `in${r.input}_buf[${inAt(r.input)}]`;
      body.push(`let x${j}_in${k} = ${s.spec.compute}(${raw});`);
    });
    for (let k = 0; k < scalarCount(s.spec.expr); k++) body.push(`let x${j}_s${k} = params.st${j}_${k};`);
    // An accumulating map reads its own output's current element (merge never lets another stage write it).
    if (s.spec.readsOutput) body.push(`let x${j}_acc = ${s.spec.compute}(b${ob.of[s.out!]}_buf[${outAt(s.out!)}]);`);
    // The stage's result in its output dtype, as storing it would have left it.
    body.push(`let t${j} = ${s.dtypes[0]}(${rename(s.spec.expr, j)});`);
    if (s.out !== null) body.push(`b${ob.of[s.out]}_buf[${outAt(s.out)}] = t${j};`);
  });
  const all = [...f.outs.map((o) => o.dtype), ...f.inputs.map((x) => x.dtype), ...f.stages.flatMap((s) => s.dtypes)];
  return `${enables(all)}${decls}
${layout.wgsl(nIn + ob.values.length)}
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
  }
}`;
}

/** Values a command reads and writes (a write binding may also be read: accumulating maps, optimizers). */
function access(c: Cmd): { reads: number[]; writes: number[] } {
  if (c.kind === 'copy') return { reads: [c.src], writes: [c.dst] };
  const writes = c.values.filter((_, k) => c.src.bindings[k] === 'write');
  return { reads: c.values, writes };
}

function fusedAccess(f: Fused): { reads: number[]; writes: number[] } {
  const writes = f.outs.map((o) => o.value);
  return { reads: [...f.inputs.map((x) => x.value), ...writes], writes };
}

/**
 * `b` with its reads of a constant map's result (a fill, any element count, read broadcast or
 * not: every element is the same) computed in registers; only when that result lives in the step
 * and `b` is its only reader, since the merged kernel iterates b's elements, not the fill's.
 */
function inlineConstant(a: Fused, b: Fused, values: readonly ValueInfo[], uses: Map<number, Set<number>>, at: number): Fused | null {
  if (a.inputs.length || a.stages.length !== 1 || a.outs.length !== 1 || a.stages[0].spec.readsOutput) return null;
  const v = a.outs[0].value;
  const u = uses.get(v)!;
  if (!values[v].intermediate || u.size !== 2 || !u.has(at) || b.outs.some((o) => o.value === v)) return null;
  if (!b.inputs.some((x) => x.value === v) || b.stages.length + 1 > MAX_STAGES) return null;
  const helpers = new Set([...a.stages, ...b.stages].map((s) => s.spec.helpers).filter((h) => h));
  if (helpers.size > 1) return null;
  const inputs: Operand[] = [];
  const refOf: Ref[] = b.inputs.map((x) => {
    if (x.value === v) return { stage: 0 };
    let i = inputs.findIndex((y) => sameOperand(x, y));
    if (i < 0) i = inputs.push(x) - 1;
    return { input: i };
  });
  const m: Fused = {
    n: b.n,
    inputs,
    outs: b.outs,
    stages: [
      { ...a.stages[0], out: null },
      ...b.stages.map((s) => ({ ...s, refs: s.refs.map((r): Ref => ('stage' in r ? { stage: r.stage + 1 } : refOf[r.input])) })),
    ],
  };
  return layoutOf(m).bytes > MAX_UNIFORM_BYTES ? null : m;
}

/**
 * A map that repeats an earlier one (same kernel, parameters and inputs, the inputs untouched in
 * between; each result written only by its map) is dropped and its readers read the earlier
 * result: the step makes the same contiguous copy of x_t for several layers, and silu(c) per block.
 */
function dropRepeats(
  list: (Cmd | null)[],
  values: readonly ValueInfo[],
  uses: Map<number, Set<number>>,
  asFused: (n: number) => Fused | null,
  clear: (a: number, b: number, ins: number[], outs: number[]) => boolean,
): void {
  const writers = (v: number) =>
    [...uses.get(v)!].filter((k) => {
      const c = list[k];
      if (!c) return false;
      if (c.kind === 'copy') return c.dst === v;
      return c.values.some((x, i) => x === v && c.src.bindings[i] === 'write');
    });
  const same = (x: Uint8Array | null, y: Uint8Array | null) =>
    x === y || (!!x && !!y && x.length === y.length && x.every((b, i) => b === y[i]));
  for (let b = 0; b < list.length; b++) {
    const cb = list[b];
    const fb = asFused(b);
    if (!fb || cb?.kind !== 'dispatch' || fb.stages[0].spec.readsOutput) continue;
    const vb = fb.outs[0].value;
    if (!values[vb].intermediate || writers(vb).length !== 1) continue;
    for (let a = b - 1; a >= 0; a--) {
      const ca = list[a];
      if (ca?.kind !== 'dispatch' || ca.key !== cb.key || !same(ca.params, cb.params) || !asFused(a)) continue;
      const fa = asFused(a)!;
      const va = fa.outs[0].value;
      if (!fa.inputs.every((x, k) => x.value === fb.inputs[k].value) || writers(va).length !== 1) continue;
      if (!clear(a, b, [...fb.inputs.map((x) => x.value), va], [])) continue;
      // Readers of b's result read a's.
      for (const k of [...uses.get(vb)!]) {
        const c = list[k]!;
        if (k === b) continue;
        list[k] = c.kind === 'copy' ? { ...c, src: c.src === vb ? va : c.src } : { ...c, values: c.values.map((x) => (x === vb ? va : x)) };
        uses.get(va)!.add(k);
      }
      for (const x of [...fb.inputs.map((o) => o.value), vb]) uses.get(x)!.delete(b);
      uses.get(vb)!.clear();
      list[b] = null;
      break;
    }
  }
}

/**
 * A copy of an intermediate that one dispatch wrote, into a value the copy is the first to use,
 * element for element at the same offsets: the dispatch writes the destination instead (a weight
 * gradient made by a matmul, then copied into the leaf's own .grad storage).
 */
function elideCopies(
  list: (Cmd | null)[],
  values: readonly ValueInfo[],
  uses: Map<number, Set<number>>,
  asFused: (n: number) => Fused | null,
): void {
  list.forEach((c, k) => {
    const f = asFused(k);
    if (!f || c?.kind !== 'dispatch' || f.stages.length !== 1 || f.inputs.length !== 1) return;
    const st = f.stages[0];
    if (st.spec.name !== COPY.name || st.spec.expr !== COPY.expr || st.spec.readsOutput || st.dtypes[0] !== st.dtypes[1]) return;
    const [x] = f.inputs;
    const [d] = f.outs;
    const ux = uses.get(x.value)!;
    const ud = uses.get(d.value)!;
    if (!values[x.value].intermediate || ux.size !== 2 || Math.min(...ud) !== k) return;
    if (x.dtype !== d.dtype || x.offset !== d.offset || !contiguous(x) || !contiguous(d)) return;
    const p = Math.min(...ux);
    const pc = list[p];
    if (pc?.kind !== 'dispatch') return;
    const writes = pc.values.filter((_, i) => pc.src.bindings[i] === 'write');
    if (writes.length !== 1 || writes[0] !== x.value || pc.values.filter((v) => v === x.value).length !== 1) return;
    list[p] = { ...pc, values: pc.values.map((v) => (v === x.value ? d.value : v)) };
    list[k] = null;
    ux.clear();
    ud.delete(k);
    ud.add(p);
  });
}

/** Column reductions already sharing a dispatch (more may join). */
interface ReduceGroup {
  reduceGroup: ColumnsReduceFuse['columnsReduce'][];
}

/** A paired dispatch: its kernel, and its operands (values) with their bindings. */
interface Paired {
  key: string;
  wgsl: () => string;
  params: Uint32Array;
  workgroups: [number, number, number];
}

/**
 * Two dispatches of one kernel and layout that differ only in some buffers share a dispatch, each
 * half of the grid running the original arithmetic (bitwise the same): single-chunk column
 * reductions (reduce-columns.ts: the adaLN shift/scale gradients summed over tokens) and ropes
 * (rope.ts: q and k, their gradients). Placed like merged maps, where the other's operands are
 * untouched in between; neither may read what the other writes.
 */
function pairDispatches(
  list: (Cmd | null)[],
  uses: Map<number, Set<number>>,
  clear: (a: number, b: number, ins: number[], outs: number[]) => boolean,
): void {
  type Pairable = Partial<ColumnsReduceFuse & RopeFuse & ReduceGroup>;
  const fuseOf = (n: number) => {
    const c = list[n];
    return c?.kind === 'dispatch' ? (c.src.fuse as Pairable | undefined) : undefined;
  };
  const members = (f: Pairable) => f.reduceGroup ?? (f.columnsReduce ? [f.columnsReduce] : null);
  // Operands: the first's values and bindings, then the second's that differ; null if they cannot pair.
  const pair = (a: DispatchCmd, b: DispatchCmd): { p: Paired; values: number[]; bindings: BindingKind[]; fuse?: ReduceGroup } | null => {
    const fa = a.src.fuse as Pairable;
    const fb = b.src.fuse as Pairable;
    const [ma, mb] = [members(fa), members(fb)];
    if (ma && mb) {
      const group = [...ma, ...mb];
      const p = groupColumnsReduce(group);
      const values = [...a.values, ...b.values];
      return (
        p && {
          p,
          values,
          bindings: [...values.map((_, i) => (i % 2 ? 'write' : 'read') as BindingKind), 'uniform'],
          fuse: { reduceGroup: group },
        }
      );
    }
    if (fa.rope && fb.rope) {
      // x, cos, sin, out: the tables must be the same values.
      if (a.values[1] !== b.values[1] || a.values[2] !== b.values[2]) return null;
      const p = pairRope(fa as RopeFuse, fb as RopeFuse);
      return (
        p && { p, values: [...a.values, b.values[0], b.values[3]], bindings: ['read', 'read', 'read', 'write', 'read', 'write', 'uniform'] }
      );
    }
    return null;
  };
  for (let b = 0; b < list.length; b++) {
    if (!fuseOf(b)) continue;
    for (let a = b - 1; a >= 0 && a >= b - 48; a--) {
      if (!fuseOf(a)) continue;
      const ca = list[a] as DispatchCmd;
      const cb = list[b] as DispatchCmd;
      const got = pair(ca, cb);
      if (!got) continue;
      const io = (c: DispatchCmd) => access(c);
      const [ra, rb] = [io(ca), io(cb)];
      // Neither reads or writes what the other writes.
      if (rb.reads.some((v) => ra.writes.includes(v)) || ra.reads.some((v) => rb.writes.includes(v))) continue;
      let at: number;
      if (clear(a, b, rb.reads, rb.writes)) at = a;
      else if (clear(a, b, ra.reads, ra.writes)) at = b;
      else continue;
      const gone = at === a ? b : a;
      const { p, values: vs, bindings, fuse } = got;
      list[at] = {
        kind: 'dispatch',
        kernel: null,
        src: { key: p.key, bindings, wgsl: p.wgsl, fuse },
        key: p.key,
        values: vs,
        workgroups: p.workgroups,
        params: new Uint8Array(p.params.buffer),
        dynamic: null,
      };
      list[gone] = null;
      for (const v of vs) {
        uses.get(v)!.delete(gone);
        uses.get(v)!.add(at);
      }
      break;
    }
  }
}

const COPY: Pick<MapSpec, 'name' | 'expr'> = { name: 'copy', expr: 'in0' };

/**
 * A zero fill (f32) followed by writes that cover it before anything reads it is dead: autograd
 * zeroes a gradient, then copies or accumulates each window of it (the chunks of an adaLN
 * projection). Accumulating into elements still zero becomes a copy (0 + x is x, up to the sign
 * of a zero), and once every element is written the fill goes. Any other access stops the scan.
 */
function dropZeroFills(
  list: (Cmd | null)[],
  fused: Map<number, Fused>,
  uses: Map<number, Set<number>>,
  asFused: (n: number) => Fused | null,
): void {
  list.forEach((c, f) => {
    const fill = asFused(f);
    if (!fill || fill.inputs.length || fill.stages.length !== 1) return;
    const st = fill.stages[0];
    if (st.spec.name !== 'fill' || st.scalars[0] !== 0 || fill.outs[0].dtype !== 'f32') return;
    const v = fill.outs[0].value;
    const zero = elements(fill.outs[0]);
    const later = [...uses.get(v)!].filter((k) => k > f).sort((x, y) => x - y);
    for (const k of later) {
      const m = asFused(k);
      const one = m && m.stages.length === 1 ? m.stages[0] : null;
      // Only single maps writing the value (not reading it as an input) keep the scan going.
      if (!m || !one || m.outs[0].value !== v || m.inputs.some((x) => x.value === v) || m.outs[0].dtype !== 'f32') return;
      const el = elements(m.outs[0]);
      let inZero = 0;
      for (const e of el) if (zero.has(e)) inZero++;
      if (one.spec.readsOutput) {
        if (inZero === 0) continue;
        if (inZero !== el.size || one.spec.expr !== 'acc + in0') return;
        fused.set(k, { ...m, stages: [{ ...one, spec: { ...one.spec, ...COPY, readsOutput: false } }] });
      }
      for (const e of el) zero.delete(e);
      if (zero.size === 0) {
        list[f] = null;
        fused.delete(f);
        uses.get(v)!.delete(f);
        return;
      }
    }
  });
}

/**
 * Merges elementwise maps (see the file comment). Returns the new command list; dispatches it
 * makes have `kernel: null` (the recorder compiles them).
 */
export function fuseMaps(cmds: readonly Cmd[], values: readonly ValueInfo[]): Cmd[] {
  const list: (Cmd | null)[] = [...cmds];
  const fused = new Map<number, Fused>();
  const maxBindings = Math.min(MAX_FUSED_BINDINGS, runtime().limits.maxStorageBuffersPerShaderStage);
  const asFused = (n: number): Fused | null => {
    const c = list[n];
    if (c?.kind !== 'dispatch') return null;
    const got = fused.get(n);
    if (got) return got;
    const f = c.src.fuse as MapFuse | undefined;
    return f?.spec && !c.dynamic ? fromMap(c, f) : null;
  };
  const accessAt = (n: number) => {
    const f = fused.get(n);
    return f ? fusedAccess(f) : access(list[n]!);
  };
  // Commands that bind each value.
  const uses = new Map<number, Set<number>>();
  const use = (v: number, n: number) => {
    let u = uses.get(v);
    if (!u) uses.set(v, (u = new Set()));
    u.add(n);
  };
  list.forEach((c, n) => {
    for (const v of c!.kind === 'dispatch' ? c!.values : [c!.src, c!.dst]) use(v, n);
  });
  /** Whether no command strictly between a and b writes `ins` or reads/writes `outs`. */
  const clear = (a: number, b: number, ins: number[], outs: number[]) => {
    const w = new Set([...ins, ...outs]);
    const r = new Set(outs);
    for (let k = a + 1; k < b; k++) {
      if (!list[k]) continue;
      const x = accessAt(k);
      if (x.writes.some((v) => w.has(v)) || x.reads.some((v) => r.has(v))) return false;
    }
    return true;
  };
  /** Stops storing outputs that live only in the step and that nothing but this kernel binds. */
  const dropStores = (f: Fused, at: number): Fused => {
    const keep = f.outs.map((o, k) => {
      const s = f.stages.find((st) => st.out === k)!;
      if (s.spec.readsOutput || !values[o.value].intermediate) return true;
      const u = uses.get(o.value)!;
      return !(u.size === 1 && u.has(at));
    });
    if (keep.every((x) => x)) return f;
    const renumber: number[] = [];
    let next = 0;
    keep.forEach((k, i) => (renumber[i] = k ? next++ : -1));
    for (const [i, o] of f.outs.entries())
      if (!keep[i] && !f.outs.some((y, k) => keep[k] && y.value === o.value)) uses.get(o.value)!.delete(at);
    return {
      ...f,
      outs: f.outs.filter((_, i) => keep[i]),
      stages: f.stages.map((s) => ({ ...s, out: s.out === null || renumber[s.out] < 0 ? null : renumber[s.out] })),
    };
  };
  dropRepeats(list, values, uses, asFused, clear);
  elideCopies(list, values, uses, asFused);
  dropZeroFills(list, fused, uses, asFused);
  for (let b = 0; b < list.length; b++) {
    let cur = b;
    let curF = asFused(b);
    if (!curF) continue;
    for (let a = cur - 1; a >= 0 && a >= cur - WINDOW; a--) {
      const aF = asFused(a);
      if (!aF || !curF) continue;
      const m = aF.n === curF.n ? merge(aF, curF, maxBindings) : inlineConstant(aF, curF, values, uses, a);
      if (!m) continue;
      const ins = (f: Fused) => f.inputs.map((x) => x.value);
      const outs = (f: Fused) => f.outs.map((o) => o.value);
      // The merged kernel runs where the earlier one did (cur's operands must be untouched in
      // between), or where the later one did (a's operands must be).
      let at: number;
      if (clear(a, cur, ins(curF), outs(curF))) at = a;
      else if (clear(a, cur, ins(aF), outs(aF))) at = cur;
      else continue;
      const gone = at === a ? cur : a;
      for (const o of [...aF.inputs, ...aF.outs, ...curF.inputs, ...curF.outs]) {
        const u = uses.get(o.value)!;
        u.delete(a);
        u.delete(cur);
        u.add(at);
      }
      list[gone] = null;
      fused.delete(gone);
      const g = dropStores(m, at);
      if (g.outs.length === 0) {
        // Nothing it computes is read: the kernel goes too.
        for (const x of g.inputs) uses.get(x.value)!.delete(at);
        list[at] = null;
        fused.delete(at);
        curF = null;
        break;
      }
      fused.set(at, g);
      cur = at;
      curF = g;
    }
  }
  pairDispatches(list, uses, clear);
  const out: Cmd[] = [];
  list.forEach((c, n) => {
    if (!c) return;
    const f = fused.get(n);
    if (!f || c.kind !== 'dispatch') {
      out.push(c);
      return;
    }
    const { src, params, values: vs } = emit(f);
    out.push({
      kind: 'dispatch',
      kernel: null,
      src,
      key: src.key,
      values: vs,
      // The grid of a map over f.n elements (the command at this position may have been a fill of another count).
      workgroups: [...grid1d(Math.ceil(f.n / MAP_PER_THREAD)), 1],
      params: new Uint8Array(params.buffer),
      dynamic: null,
    });
  });
  return out;
}
