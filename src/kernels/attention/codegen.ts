/**
 * The small code-generation language the attention kernels are written in (sources.ts): operands
 * and their bindings and parameters, the code shape along D (unrolled vec4 registers or loops),
 * owned rows, and the streamed loop over the other operand's rows with its dot products and
 * updates. See ../attention.ts for the algorithm.
 */
import { enables, type Operand } from '../common.js';
import { uniforms, type FieldType, type UniformLayout } from '../uniforms.js';
import type { View } from '../view.js';

/** Batch, heads, query and key counts, head dim of one attention call. */
export interface AttentionDims {
  b: number;
  h: number;
  nq: number;
  nk: number;
  d: number;
}

export interface AttentionConfig {
  /** Threads per workgroup. */
  rows: number;
  /** Rows each thread owns (queries in forward and dQ, keys in dK/dV); each streamed row serves all of them. */
  perThread: number;
  /** Rows of the other operand per step. */
  unroll: number;
  /** 0: stream the other operand from global memory; n > 0: stage n rows at a time in workgroup memory (a multiple of `unroll`). */
  stage: number;
  /** Loop over D with private arrays (small code, fast compiles) instead of unrolled vec4 registers. */
  loops: boolean;
}

/** Workgroup memory of a staged kernel: two vec4 row tiles plus two per-row scalars. */
export function stagedBytes(d: number, stage: number): number {
  return stage * (2 * Math.ceil(d / 4) * 16 + 8);
}

/** An operand with its WGSL storage access decided. */
export interface BoundOperand extends Operand {
  /** Rows are read/written as whole vec4s (contiguous D, a multiple of 4, as are every stride and the offset). */
  v4: boolean;
  /** The WGSL storage variable it lives in (operands in one buffer share one binding). */
  buf: string;
  binding: number;
}

/**
 * Gives each operand its binding: operands in the same buffer with the same access and element
 * type share one (WebGPU rejects two writable bindings of one buffer in a dispatch, e.g. dk and
 * dv viewing one fused dkv gradient). A buffer both read and written in one dispatch would race,
 * so it is an error.
 */
export function bind(op: string, ops: BoundOperand[]): BoundOperand[] {
  for (const o of ops) {
    const clash = ops.find((x) => x.view.buffer === o.view.buffer && x.access !== o.access);
    if (clash)
      throw new RangeError(
        `${op}: ${o.access === 'write' ? o.name : clash.name} shares its buffer with ${o.access === 'write' ? clash.name : o.name}; write into a separate buffer`,
      );
  }
  // Writes to one buffer must agree on the element type.
  for (const o of ops)
    if (o.access === 'write' && ops.some((x) => x.access === 'write' && x.view.buffer === o.view.buffer && !x.v4)) o.v4 = false;
  let next = 0;
  ops.forEach((o, i) => {
    const prev = ops
      .slice(0, i)
      .find((x) => x.view.buffer === o.view.buffer && x.access === o.access && x.v4 === o.v4 && x.view.dtype === o.view.dtype);
    o.buf = prev ? prev.buf : `${o.name}_buf`;
    o.binding = prev ? prev.binding : next++;
  });
  return ops;
}

export function vec4Able(v: View): boolean {
  if (v.shape.length !== 4 || v.shape[3] % 4 !== 0 || v.strides[3] !== 1 || v.offset % 4 !== 0) return false;
  return v.strides.every((s, i) => i === 3 || v.shape[i] === 1 || s % 4 === 0);
}

/** Parameters: a header (per kernel), then per operand its (b, h, row, element) strides and offset. */
export type Header = Record<string, FieldType>;
const layouts = new Map<string, UniformLayout>();

export function attentionUniforms(header: Header, ops: BoundOperand[]): UniformLayout {
  const key = `${Object.keys(header).join(',')}|${ops.map((o) => o.name).join(',')}`;
  let l = layouts.get(key);
  if (!l) {
    const fields: Header = { ...header };
    for (const o of ops) for (const f of ['sb', 'sh', 'sn', 'sd', 'offset']) fields[`${o.name}_${f}`] = 'u32';
    l = uniforms(fields);
    layouts.set(key, l);
  }
  return l;
}

export function packParams(header: Header, values: Record<string, number>, ops: BoundOperand[]): Uint32Array {
  const all: Record<string, number> = { ...values };
  for (const { name, view: v } of ops) {
    // 3-D operands (lse, delta) have no D stride; size-1 dims never move. u32 wrap-around keeps negative strides exact.
    const s = (v.shape.length === 4 ? v.strides : [...v.strides, 0]).map((x, i) => (v.shape[i] === 1 ? 0 : x));
    all[`${name}_sb`] = s[0];
    all[`${name}_sh`] = s[1];
    all[`${name}_sn`] = s[2];
    all[`${name}_sd`] = s[3];
    all[`${name}_offset`] = v.offset;
  }
  return attentionUniforms(header, ops).pack(all);
}

/** The operands that own a binding, in binding order. */
export const bound = (ops: BoundOperand[]) => ops.filter((o, i) => ops.findIndex((x) => x.binding === o.binding) === i);

export function declarations(header: Header, ops: BoundOperand[]): string {
  const lines = bound(ops).map((o) => {
    const mode = o.access === 'read' ? 'read' : 'read_write';
    return `@group(0) @binding(${o.binding}) var<storage, ${mode}> ${o.buf}: array<${o.v4 ? `vec4<${o.view.dtype}>` : o.view.dtype}>;`;
  });
  const n = bound(ops).length;
  return `${enables(ops.map((o) => o.view.dtype))}${lines.join('\n')}\n${attentionUniforms(header, ops).wgsl(n)}`;
}

/** Per-operand base offset for this (b, h) and its row / element strides. */
export function operandLets(ops: BoundOperand[]): string {
  return ops
    .map(
      (o) => `  let ${o.name}_base = params.${o.name}_offset + b * params.${o.name}_sb + h * params.${o.name}_sh;
  let ${o.name}_sn = params.${o.name}_sn;
  let ${o.name}_sd = params.${o.name}_sd;`,
    )
    .join('\n');
}

export const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/**
 * Code shape along D. Index expressions `i` are WGSL u32 expressions: literals when unrolled, the
 * loop variable otherwise.
 */
export class Shape {
  readonly dv4: number;
  constructor(
    readonly d: number,
    readonly cfg: AttentionConfig,
  ) {
    this.dv4 = Math.ceil(d / 4);
  }

  /** `body(i)` for every vec4 index of a row. */
  forI(body: (i: string) => string, indent = '    '): string {
    if (this.cfg.loops) return `${indent}for (var i = 0u; i < dv4; i++) {\n${body('i')}\n${indent}}`;
    return range(this.dv4)
      .map((i) => `${indent}{\n${body(`${i}u`)}\n${indent}}`)
      .join('\n');
  }

  /** Declares zeroed row registers `reg` for every owned row. */
  declare(reg: string): string {
    if (this.cfg.loops) return `  var ${reg}: array<vec4<f32>, ${this.cfg.perThread * this.dv4}>;`;
    return range(this.cfg.perThread)
      .flatMap((r) => range(this.dv4).map((i) => `  var ${reg}${r}_${i} = vec4<f32>(0.0);`))
      .join('\n');
  }

  /** Owned row r's vec4 i of registers `reg`. */
  reg(reg: string, r: number, i: string): string {
    if (this.cfg.loops) return `${reg}[${r * this.dv4}u + ${i}]`;
    return `${reg}${r}_${i.replace(/u$/, '')}`;
  }

  /** vec4 i of the row starting at element `rb` of operand `o` (zeros past D). */
  read(o: BoundOperand, rb: string, i: string): string {
    if (o.v4) return `vec4<f32>(${o.buf}[${rb} / 4u + ${i}])`;
    const literal = /^\d+u$/.test(i) ? Number.parseInt(i, 10) : -1;
    const comps = [0, 1, 2, 3].map((k) => {
      const col = literal >= 0 ? `${4 * literal + k}u` : `(4u * ${i} + ${k}u)`;
      const load = (c: string) => `f32(${o.buf}[${rb} + ${c} * ${o.name}_sd])`;
      if (this.d % 4 === 0) return load(col);
      if (literal >= 0) return 4 * literal + k < this.d ? load(col) : '0.0';
      // Past D: select() evaluates both sides, so clamp the column and zero the value.
      return `select(0.0, ${load(`min(${col}, ${this.d - 1}u)`)}, ${col} < ${this.d}u)`;
    });
    return `vec4<f32>(${comps.join(', ')})`;
  }

  /** Stores vec4 i of a row (value already f32) into the row at `rb` of `o`. */
  write(o: BoundOperand, rb: string, i: string, value: string): string {
    const t = o.view.dtype;
    if (o.v4) return `${o.buf}[${rb} / 4u + ${i}] = vec4<${t}>(${value});`;
    const literal = /^\d+u$/.test(i) ? Number.parseInt(i, 10) : -1;
    const lines = [`let w = ${value};`];
    for (let k = 0; k < 4; k++) {
      const col = literal >= 0 ? `${4 * literal + k}u` : `(4u * ${i} + ${k}u)`;
      const store = `${o.buf}[${rb} + ${col} * ${o.name}_sd] = ${t}(w[${k}]);`;
      if (this.d % 4 === 0 || (literal >= 0 && 4 * literal + k < this.d)) lines.push(store);
      else if (literal < 0) lines.push(`if (${col} < ${this.d}u) { ${store} }`);
    }
    return lines.join(' ');
  }
}

/** The rows this thread owns: row{r}, valid{r}. */
export function rowLets(cfg: AttentionConfig, limit: string): string {
  return range(cfg.perThread)
    .map((r) => `  let row${r} = wid.x * ${cfg.rows * cfg.perThread}u + ${r * cfg.rows}u + lid;\n  let valid${r} = row${r} < ${limit};`)
    .join('\n');
}

/** Declares registers `reg` and loads this thread's rows of `o` into them (zeros when invalid). */
export function loadRows(sh: Shape, o: BoundOperand, reg: string, scale = ''): string {
  const loads = range(sh.cfg.perThread).map(
    (r) => `  if (valid${r}) {
    let rb = ${o.name}_base + row${r} * ${o.name}_sn;
${sh.forI((i) => `      ${sh.reg(reg, r, i)} = ${sh.read(o, 'rb', i)}${scale};`)}
  }`,
  );
  return `${sh.declare(reg)}\n${loads.join('\n')}`;
}

/** Stores registers `reg` · factor(r) into this thread's valid rows of `o`. */
export function storeRows(sh: Shape, o: BoundOperand, reg: string, factor: (r: number) => string): string {
  return range(sh.cfg.perThread)
    .map(
      (r) => `  if (valid${r}) {
    let rb = ${o.name}_base + row${r} * ${o.name}_sn;
${sh.forI((i) => `      ${sh.write(o, 'rb', i, `${sh.reg(reg, r, i)} * ${factor(r)}`)}`)}
  }`,
    )
    .join('\n');
}

/** The other operand, streamed: row operands [B,H,N,D] and per-row scalars [B,H,N] (with a factor applied on load). */
export interface Stream {
  rows: BoundOperand[];
  scalars: { op: BoundOperand; factor: string }[];
  limit: string;
}

/**
 * The loop over the other operand's rows (keys for forward/dQ, queries for dK/dV), `unroll` rows
 * per step. In the step, `ok_${u}` says whether step row u exists, `${name}s${u}` is a streamed
 * scalar, and `access(name, u, i)` the vec4 i of streamed row u.
 */
export function streamLoop(sh: Shape, st: Stream, body: (access: (name: string, u: number, i: string) => string) => string): string {
  const { cfg, dv4 } = sh;
  const U = cfg.unroll;
  const L = st.limit;
  const oks = range(U).map((u) => `let ok_${u} = base + ${u}u < ${L};`);
  const byName = (n: string) => st.rows.find((o) => o.name === n)!;
  if (cfg.stage === 0) {
    const lets = range(U).flatMap((u) => [
      `let r_${u} = min(base + ${u}u, ${L} - 1u);`,
      ...st.rows.map((o) => `let ${o.name}_r${u} = ${o.name}_base + r_${u} * ${o.name}_sn;`),
      ...st.scalars.map(({ op, factor }) => `let ${op.name}s${u} = f32(${op.buf}[${op.name}_base + r_${u} * ${op.name}_sn])${factor};`),
    ]);
    return `  for (var base = 0u; base < ${L}; base += ${U}u) {
    ${[...oks, ...lets].join('\n    ')}
${body((n, u, i) => sh.read(byName(n), `${n}_r${u}`, i))}
  }`;
  }
  const S = cfg.stage;
  const tileLoads = st.rows.map(
    (o) => `    for (var e = lid; e < ${S * dv4}u; e += T) {
      let j = e / ${dv4}u;
      var val = vec4<f32>(0.0);
      if (kt + j < ${L}) {
        let rb = ${o.name}_base + (kt + j) * ${o.name}_sn;
        let c = e % ${dv4}u;
        val = ${sh.read(o, 'rb', 'c')};
      }
      ${o.name}_tile[e] = val;
    }`,
  );
  const scalarLoads = st.scalars.map(
    ({ op, factor }) => `    for (var e = lid; e < ${S}u; e += T) {
      var val = 0.0;
      if (kt + e < ${L}) { val = f32(${op.buf}[${op.name}_base + (kt + e) * ${op.name}_sn])${factor}; }
      ${op.name}_tile[e] = val;
    }`,
  );
  const lets = range(U).flatMap((u) => st.scalars.map(({ op }) => `let ${op.name}s${u} = ${op.name}_tile[j0 + ${u}u];`));
  return `  for (var kt = 0u; kt < ${L}; kt += ${S}u) {
    workgroupBarrier();
${[...tileLoads, ...scalarLoads].join('\n')}
    workgroupBarrier();
    for (var j0 = 0u; j0 < min(${S}u, ${L} - kt); j0 += ${U}u) {
      let base = kt + j0;
      ${[...oks, ...lets].join('\n      ')}
${body((n, u, i) => `${n}_tile[(j0 + ${u}u) * ${dv4}u + ${i}]`)}
    }
  }`;
}

export function tileDecls(sh: Shape, st: Stream): string {
  if (sh.cfg.stage === 0) return '';
  return [
    ...st.rows.map((o) => `var<workgroup> ${o.name}_tile: array<vec4<f32>, ${sh.cfg.stage * sh.dv4}>;`),
    ...st.scalars.map(({ op }) => `var<workgroup> ${op.name}_tile: array<f32, ${sh.cfg.stage}>;`),
  ].join('\n');
}

/** Pairs (r, u) of owned row × step row. */
export const pairs = (cfg: AttentionConfig) => range(cfg.perThread).flatMap((r) => range(cfg.unroll).map((u) => [r, u] as const));

/**
 * Dot products of owned rows with step rows: for each (r, u) and each [acc, reg, name] in
 * `specs`, `${acc}${r}_${u}` = Σ_i reg(r, i) · access(name, u, i).
 */
export function dots(sh: Shape, access: (n: string, u: number, i: string) => string, specs: [string, string, string][]): string {
  const P = pairs(sh.cfg);
  const decl = specs.flatMap(([acc]) => P.map(([r, u]) => `    var ${acc}${r}_${u} = vec4<f32>(0.0);`));
  const loop = sh.forI((i) =>
    specs
      .flatMap(([acc, reg, n]) => [
        ...range(sh.cfg.unroll).map((u) => `      let ${n}v${u} = ${access(n, u, i)};`),
        ...range(sh.cfg.perThread).map((r) => `      let ${reg}v${r} = ${sh.reg(reg, r, i)};`),
        ...P.map(([r, u]) => `      ${acc}${r}_${u} = fma(${reg}v${r}, ${n}v${u}, ${acc}${r}_${u});`),
      ])
      .join('\n'),
  );
  return `${decl.join('\n')}\n${loop}`;
}

/** reg(r, i) = start(reg(r, i), r) + Σ_u weight(r, u) · access(name, u, i), for each [reg, name, weight, start]. */
export function updates(
  sh: Shape,
  access: (n: string, u: number, i: string) => string,
  specs: [string, string, (r: number, u: number) => string, (x: string, r: number) => string][],
): string {
  return sh.forI((i) =>
    specs
      .flatMap(([reg, n, weight, start]) => [
        ...range(sh.cfg.unroll).map((u) => `      let ${n}w${u} = ${access(n, u, i)};`),
        ...range(sh.cfg.perThread).map((r) => {
          let e = start(sh.reg(reg, r, i), r);
          for (let u = 0; u < sh.cfg.unroll; u++) e = `fma(vec4<f32>(${weight(r, u)}), ${n}w${u}, ${e})`;
          return `      ${sh.reg(reg, r, i)} = ${e};`;
        }),
      ])
      .join('\n'),
  );
}

export const hsum = (x: string) => `dot(${x}, vec4<f32>(1.0))`;
