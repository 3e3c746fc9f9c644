/**
 * The generated kernels of the fusion pass (fusion.ts): a fused kernel is a list of map stages
 * over the same n elements, with inputs, several outputs (outputs writing disjoint windows of one
 * value share a binding), and stages that read earlier stages' results in registers. Merging two
 * of them, a constant map into a reader, and emitting the WGSL, key, bindings and uniforms.
 */
import type { DType } from '../core/dtype.js';
import type { Cmd, DispatchCmd, ValueInfo } from '../gpu/recorder.js';
import type { BindingKind, KernelSource } from '../gpu/pipeline-cache.js';
import { enables, FLAT_INDEX, WG } from './common.js';
import { MAP_PER_THREAD, type MapFuse, type MapSpec, vec4KeyPart, vec4Operands } from './elementwise.js';
import { MAX_UNIFORM_BYTES, uniforms, type UniformLayout } from './uniforms.js';

/** Storage buffers one fused kernel binds (inputs and outputs), below the adapter's limit. */
export const MAX_FUSED_BINDINGS = 10;
/** Stages per fused kernel (the generated source and the uniform grow with them). */
export const MAX_STAGES = 12;
/** How far back (in commands) a map looks for a kernel to join. */
export const WINDOW = 24;

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
export interface Fused {
  n: number;
  inputs: Operand[];
  outs: Operand[];
  stages: Stage[];
}

export function fromMap(c: DispatchCmd, f: MapFuse): Fused {
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
export function contiguous(o: Operand): boolean {
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
export function elements(o: Operand): Set<number> {
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
export function merge(a: Fused, b: Fused, maxBindings: number): Fused | null {
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
export function emit(f: Fused): { src: KernelSource; params: Uint32Array; values: number[] } {
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
  const plan = vec4Plan(f);
  const key = `fused|o${f.outs.length}b${ob.of.join('.')}i${f.inputs.length}|${operands}|${stages}${vec4KeyPart(plan)}`;
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
    src: { key, bindings, wgsl: () => fusedSource(f, layout, plan) },
    params: layout.pack(values),
    values: [...f.inputs.map((x) => x.value), ...ob.values],
  };
}

/**
 * WGSL for the element offset of operand `name` at flat index i: rank 1 inline; otherwise over
 * the coordinates c<shape>_<d> of i, computed once per distinct shape (integer division is the
 * costly part on CPU adapters, so operands sharing dims share it).
 */
function index(name: string, rank: number, shape: number, i = 'i'): string {
  if (rank === 1) return `(params.${name}_offset + ${i} * params.${name}_stride_0)`;
  const terms = Array.from({ length: rank }, (_, d) => `c${shape}_${d} * params.${name}_stride_${d}`);
  return `(params.${name}_offset + ${terms.join(' + ')})`;
}

/**
 * Statements computing the coordinates c<j>_<d> of flat index i in shape j; with `vec4`, of the
 * first element of vec4 i4 (the innermost dim counted in vec4s, its coordinate times 4).
 */
function coordinates(j: number, rank: number, vec4 = false): string {
  const parts = [`var rem${j} = ${vec4 ? 'i4' : 'i'};`];
  for (let d = rank - 1; d > 0; d--) {
    if (vec4 && d === rank - 1)
      parts.push(`let c${j}_${d} = (rem${j} % (params.shape${j}_${d} / 4u)) * 4u; rem${j} = rem${j} / (params.shape${j}_${d} / 4u);`);
    else parts.push(`let c${j}_${d} = rem${j} % params.shape${j}_${d}; rem${j} = rem${j} / params.shape${j}_${d};`);
  }
  parts.push(`let c${j}_0 = rem${j};`);
  return parts.join(' ');
}

/** Renames a stage's `in<k>`, `s<k>` and `acc` so stages do not collide. */
const rename = (expr: string, j: number) =>
  expr
    .replace(/\bin(\d)\b/g, `x${j}_in$1`)
    .replace(/\bs(\d)\b/g, `x${j}_s$1`)
    .replace(/\bacc\b/g, `x${j}_acc`);

let fusedVec4 = true;
/** Turns the vec4 fused kernels (vec4Plan) off and on again: for tests and benchmarks that compare the two. */
export function setFusedVec4(enabled: boolean): void {
  fusedVec4 = enabled;
}

/**
 * The vec4 plan of a fused kernel (elementwise.ts vec4Operands, each operand over its own dims).
 * Null: the one-element kernel.
 */
export function vec4Plan(f: Fused): boolean[] | null {
  return fusedVec4 ? vec4Operands(f.outs, f.inputs) : null;
}

/**
 * The fused kernel's WGSL. Without a plan, one element per step: the coordinates of flat index i,
 * then each stage in order, storing as it goes. With a vec4 plan (vec4Plan): coordinates once per
 * vec4 (its first element; the innermost dim counted in vec4s), each input loaded once, the stages
 * run per component with `i` the element's flat index, each output stored as one vec4 at the end
 * (no stage reads another stage's output from memory: merge keeps them apart).
 */
function fusedSource(f: Fused, layout: UniformLayout, plan: boolean[] | null): string {
  const nIn = f.inputs.length;
  const { shapes, of } = shapeTable(f);
  const ob = outBindings(f);
  const elem = (t: DType, vec4: boolean) => (vec4 ? `vec4<${t}>` : t);
  const decls = [
    ...f.inputs.map((x, k) => `@group(0) @binding(${k}) var<storage, read> in${k}_buf: array<${elem(x.dtype, plan?.[k] ?? false)}>;`),
    ...ob.values.map(
      (_, j) =>
        `@group(0) @binding(${nIn + j}) var<storage, read_write> b${j}_buf: array<${elem(f.outs[ob.of.indexOf(j)].dtype, plan !== null)}>;`,
    ),
  ].join('\n');
  const helpers = [...new Set(f.stages.map((s) => s.spec.helpers ?? ''))];
  const ops = [...f.outs, ...f.inputs];
  const at = names(f).map((name, k) => index(name, ops[k].shape.length, of[k], plan ? 'i0' : 'i'));
  const outAt = (k: number) => at[k];
  const inAt = (k: number) => at[f.outs.length + k];
  /** Every stage's statements, given how it reads input k, reads stage j's accumulator, and stores stage j into output o. */
  const stageLines = (read: (k: number) => string, acc: (j: number, out: number) => string, store: (o: number, j: number) => string) => {
    const lines: string[] = [];
    f.stages.forEach((s, j) => {
      s.refs.forEach((r, k) => lines.push(`let x${j}_in${k} = ${s.spec.compute}(${'stage' in r ? `t${r.stage}` : read(r.input)});`));
      for (let k = 0; k < scalarCount(s.spec.expr); k++) lines.push(`let x${j}_s${k} = params.st${j}_${k};`);
      // An accumulating map reads its own output's current element (merge never lets another stage write it).
      if (s.spec.readsOutput) lines.push(`let x${j}_acc = ${s.spec.compute}(${acc(j, s.out!)});`);
      // The stage's result in its output dtype, as storing it would have left it.
      lines.push(`let t${j} = ${s.dtypes[0]}(${rename(s.spec.expr, j)});`);
      if (s.out !== null) lines.push(store(s.out, j));
    });
    return lines;
  };
  let body: string[];
  if (!plan) {
    body = [
      ...shapes.map((sh, j) => coordinates(j, sh.length)),
      ...stageLines(
        (k) => `in${k}_buf[${inAt(k)}]`,
        (_, o) => `b${ob.of[o]}_buf[${outAt(o)}]`,
        (o, j) => `b${ob.of[o]}_buf[${outAt(o)}] = t${j};`,
      ),
    ];
  } else {
    body = ['let i0 = 4u * i4;', ...shapes.map((sh, j) => coordinates(j, sh.length, true))];
    f.inputs.forEach((_, k) => body.push(`let v${k} = in${k}_buf[${inAt(k)}${plan[k] ? ' / 4u' : ''}];`));
    f.stages.forEach((s, j) => {
      if (s.spec.readsOutput) body.push(`let a${j} = b${ob.of[s.out!]}_buf[${outAt(s.out!)} / 4u];`);
    });
    f.outs.forEach((o, k) => body.push(`var r${k}: vec4<${o.dtype}>;`));
    ['x', 'y', 'z', 'w'].forEach((c, ci) => {
      const lines = stageLines(
        (k) => (plan[k] ? `v${k}.${c}` : `v${k}`),
        (j) => `a${j}.${c}`,
        (o, j) => `r${o}.${c} = t${j};`,
      );
      body.push(`{\n      ${[`let i = i0 + ${ci}u;`, ...lines].join('\n      ')}\n    }`);
    });
    f.outs.forEach((_, k) => body.push(`b${ob.of[k]}_buf[${outAt(k)} / 4u] = r${k};`));
  }
  const [count, step, per] = plan ? ['n4', 'i4', MAP_PER_THREAD / 4] : ['n', 'i', MAP_PER_THREAD];
  const all = [...f.outs.map((o) => o.dtype), ...f.inputs.map((x) => x.dtype), ...f.stages.flatMap((s) => s.dtypes)];
  return `${enables(all)}${decls}
${layout.wgsl(nIn + ob.values.length)}
const WG = ${WG}u;
${helpers.join('\n')}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = ${FLAT_INDEX};
  let threads = nwg.x * nwg.y * WG;
  let ${count} = params.n${plan ? ' / 4u' : ''};
  for (var e = 0u; e < ${per}u; e++) {
    let ${step} = first + e * threads;
    if (${step} >= ${count}) { return; }
    ${body.join('\n    ')}
  }
}`;
}

/** Values a command reads and writes (a write binding may also be read: accumulating maps, optimizers). */
export function access(c: Cmd): { reads: number[]; writes: number[] } {
  if (c.kind === 'copy') return { reads: [c.src], writes: [c.dst] };
  const writes = c.values.filter((_, k) => c.src.bindings[k] === 'write');
  return { reads: c.values, writes };
}

export function fusedAccess(f: Fused): { reads: number[]; writes: number[] } {
  const writes = f.outs.map((o) => o.value);
  return { reads: [...f.inputs.map((x) => x.value), ...writes], writes };
}

/**
 * `b` with its reads of a constant map's result (a fill, any element count, read broadcast or
 * not: every element is the same) computed in registers; only when that result lives in the step
 * and `b` is its only reader, since the merged kernel iterates b's elements, not the fill's.
 */
export function inlineConstant(a: Fused, b: Fused, values: readonly ValueInfo[], uses: Map<number, Set<number>>, at: number): Fused | null {
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
