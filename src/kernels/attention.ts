/**
 * Fused scaled-dot-product attention, forward and backward, in the flash-attention style: scores
 * exist only in registers, a few keys (or queries) at a time, so memory is linear in N.
 *
 *   forward    a thread owns `perThread` query rows and keeps their output rows, running maxima
 *              and running sums in registers (online softmax), looping over the keys. Saves
 *              lse = log Σ_j exp(scale·q·k_j) per row.
 *   backward   delta = rowsum(dO ∘ O) (one thread per row), then
 *              dQ    threads own query rows and loop over keys:    dQ = scale·dS·K
 *              dK/dV threads own key rows and loop over queries:   dV = Pᵀ·dO, dK = scale·dSᵀ·Q
 *              with P = exp(scale·q·k − lse) recomputed and dS = P∘(dO·vᵀ − delta). Every output
 *              element is written by exactly one thread: deterministic, no atomics.
 *
 * The loop over the other operand takes `unroll` rows per step; a step's scores stay in registers
 * and each row accumulator is read and written once per step. Those rows come straight from
 * global memory ('stream': every thread of a workgroup reads the same row) or from tiles staged in
 * workgroup memory ('stage', barriers around each tile). Along D the code is either unrolled into
 * vec4 registers (fastest, but LLVM-based drivers compile large unrolled kernels for tens of
 * seconds) or a loop over private arrays with a trip count the compiler cannot see ('loops').
 *
 * Operands are [B, H, N, D] views with any strides and offsets (e.g. q/k/v sliced out of a fused
 * [B, N, 3, H, D] projection), f32 or f16 (f32 accumulation); rows whose D is contiguous and
 * 16-byte aligned are read and written as vec4. Kernels are specialised on D, the configuration
 * and every operand's dtype and vec4 access; all of it is in the pipeline key.
 */
import { runtime } from '../gpu/runtime.js';
import { enables, FLAT_INDEX, grid1d, Params, paramsDecl, WG } from './common.js';
import type { View } from './view.js';

/** Largest head dim the kernels are generated for. */
export const MAX_HEAD_DIM = 256;

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

export interface AttentionOptions {
  /** Overrides the per-adapter choice (benchmarks, tests of every variant). */
  config?: AttentionConfig;
}

/**
 * Per-adapter choice, for the forward kernel or the two backward kernels. Lavapipe's rows were
 * measured with bench/attention.ts (B=1 H=4 N=256 D=64): streamed rows and loops over D beat
 * staged tiles (≈ 15 % slower) and unrolled registers (≈ 25 % slower, and 50 s compiles instead of
 * 1–3 s); 4×4 register blocks were best forward, 2×4 backward (4×4 was as fast but compiles 4×
 * longer). The staged, unrolled configuration for other adapters is a starting point that has not
 * been measured on a GPU yet.
 */
export function chooseAttentionConfig(d: number, pass: 'forward' | 'backward' = 'forward'): AttentionConfig {
  const rt = runtime();
  const s = rt.adapterSummary;
  const name = [s.vendor, s.architecture, s.device, s.description].join(' ').toLowerCase();
  if (/llvmpipe|lavapipe|swiftshader/.test(name)) {
    return pass === 'forward' ? { rows: 32, perThread: 4, unroll: 4, stage: 0, loops: true } : { rows: 32, perThread: 2, unroll: 4, stage: 0, loops: true };
  }
  const unroll = 4;
  let stage = 32;
  while (stage > unroll && stagedBytes(d, stage) > rt.limits.maxComputeWorkgroupStorageSize) stage /= 2;
  return { rows: 64, perThread: 1, unroll, stage, loops: false };
}

/** Workgroup memory of a staged kernel: two vec4 row tiles plus two per-row scalars. */
export function stagedBytes(d: number, stage: number): number {
  return stage * (2 * Math.ceil(d / 4) * 16 + 8);
}

// ---- parameters: header [Nq, Nk, scale·log2(e), scale, ⌈D/4⌉], then per operand [sB, sH, sN, sD, offset] ----

const HEADER = 8;
const WORDS = 5;

interface Operand {
  name: string;
  view: View;
  access: 'read' | 'write';
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
function bind(op: string, ops: Operand[]): Operand[] {
  for (const o of ops) {
    const clash = ops.find((x) => x.view.buffer === o.view.buffer && x.access !== o.access);
    if (clash) throw new RangeError(`${op}: ${o.access === 'write' ? o.name : clash.name} shares its buffer with ${o.access === 'write' ? clash.name : o.name}; write into a separate buffer`);
  }
  // Writes to one buffer must agree on the element type.
  for (const o of ops) if (o.access === 'write' && ops.some((x) => x.access === 'write' && x.view.buffer === o.view.buffer && !x.v4)) o.v4 = false;
  let next = 0;
  ops.forEach((o, i) => {
    const prev = ops.slice(0, i).find((x) => x.view.buffer === o.view.buffer && x.access === o.access && x.v4 === o.v4 && x.view.dtype === o.view.dtype);
    o.buf = prev ? prev.buf : `${o.name}_buf`;
    o.binding = prev ? prev.binding : next++;
  });
  return ops;
}

function vec4Able(v: View): boolean {
  if (v.shape.length !== 4 || v.shape[3] % 4 !== 0 || v.strides[3] !== 1 || v.offset % 4 !== 0) return false;
  return v.strides.every((s, i) => i === 3 || v.shape[i] === 1 || s % 4 === 0);
}

function packParams(header: Params, ops: Operand[]): Uint32Array {
  const p = header.pad(HEADER);
  for (const { view: v } of ops) {
    // 3-D operands (lse, delta) have no D stride; size-1 dims never move. u32 wrap-around keeps negative strides exact.
    const s = (v.shape.length === 4 ? v.strides : [...v.strides, 0]).map((x, i) => (v.shape[i] === 1 ? 0 : x));
    p.u(s[0], s[1], s[2], s[3], v.offset);
  }
  return p.build();
}

/** The operands that own a binding, in binding order. */
const bound = (ops: Operand[]) => ops.filter((o, i) => ops.findIndex((x) => x.binding === o.binding) === i);

function declarations(ops: Operand[]): string {
  const lines = bound(ops).map((o) => {
    const mode = o.access === 'read' ? 'read' : 'read_write';
    return `@group(0) @binding(${o.binding}) var<storage, ${mode}> ${o.buf}: array<${o.v4 ? `vec4<${o.view.dtype}>` : o.view.dtype}>;`;
  });
  const n = bound(ops).length;
  return `${enables(ops.map((o) => o.view.dtype))}${lines.join('\n')}\n${paramsDecl(n, Math.ceil((HEADER + WORDS * ops.length) / 4))}`;
}

/** Per-operand base offset for this (b, h) and its row / element strides. */
function operandLets(ops: Operand[]): string {
  return ops
    .map((o, i) => {
      const w = HEADER + WORDS * i;
      return `  let ${o.name}_base = pu(${w + 4}u) + b * pu(${w}u) + h * pu(${w + 1}u);
  let ${o.name}_sn = pu(${w + 2}u);
  let ${o.name}_sd = pu(${w + 3}u);`;
    })
    .join('\n');
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/**
 * Code shape along D. Index expressions `i` are WGSL u32 expressions: literals when unrolled, the
 * loop variable otherwise.
 */
class Shape {
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
  read(o: Operand, rb: string, i: string): string {
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
  write(o: Operand, rb: string, i: string, value: string): string {
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
function rowLets(cfg: AttentionConfig, limit: string): string {
  return range(cfg.perThread)
    .map((r) => `  let row${r} = wid.x * ${cfg.rows * cfg.perThread}u + ${r * cfg.rows}u + lid;\n  let valid${r} = row${r} < ${limit};`)
    .join('\n');
}

/** Declares registers `reg` and loads this thread's rows of `o` into them (zeros when invalid). */
function loadRows(sh: Shape, o: Operand, reg: string, scale = ''): string {
  const loads = range(sh.cfg.perThread).map(
    (r) => `  if (valid${r}) {
    let rb = ${o.name}_base + row${r} * ${o.name}_sn;
${sh.forI((i) => `      ${sh.reg(reg, r, i)} = ${sh.read(o, 'rb', i)}${scale};`)}
  }`,
  );
  return `${sh.declare(reg)}\n${loads.join('\n')}`;
}

/** Stores registers `reg` · factor(r) into this thread's valid rows of `o`. */
function storeRows(sh: Shape, o: Operand, reg: string, factor: (r: number) => string): string {
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
interface Stream {
  rows: Operand[];
  scalars: { op: Operand; factor: string }[];
  limit: string;
}

/**
 * The loop over the other operand's rows (keys for forward/dQ, queries for dK/dV), `unroll` rows
 * per step. In the step, `ok_${u}` says whether step row u exists, `${name}s${u}` is a streamed
 * scalar, and `access(name, u, i)` the vec4 i of streamed row u.
 */
function streamLoop(sh: Shape, st: Stream, body: (access: (name: string, u: number, i: string) => string) => string): string {
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

function tileDecls(sh: Shape, st: Stream): string {
  if (sh.cfg.stage === 0) return '';
  return [
    ...st.rows.map((o) => `var<workgroup> ${o.name}_tile: array<vec4<f32>, ${sh.cfg.stage * sh.dv4}>;`),
    ...st.scalars.map(({ op }) => `var<workgroup> ${op.name}_tile: array<f32, ${sh.cfg.stage}>;`),
  ].join('\n');
}

/** Pairs (r, u) of owned row × step row. */
const pairs = (cfg: AttentionConfig) => range(cfg.perThread).flatMap((r) => range(cfg.unroll).map((u) => [r, u] as const));

/**
 * Dot products of owned rows with step rows: for each (r, u) and each [acc, reg, name] in
 * `specs`, `${acc}${r}_${u}` = Σ_i reg(r, i) · access(name, u, i).
 */
function dots(sh: Shape, access: (n: string, u: number, i: string) => string, specs: [string, string, string][]): string {
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
function updates(sh: Shape, access: (n: string, u: number, i: string) => string, specs: [string, string, (r: number, u: number) => string, (x: string, r: number) => string][]): string {
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

const MAIN = (cfg: AttentionConfig) => `const T = ${cfg.rows}u;
@compute @workgroup_size(${cfg.rows})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let h = wid.y;
  let b = wid.z;
  let Nq = pu(0u);
  let Nk = pu(1u);
  let sl2 = pf(2u);
  let scale = pf(3u);
  // ⌈D/4⌉ from the uniform, so that the compiler cannot unroll the loops over D.
  let dv4 = pu(4u);`;

const hsum = (x: string) => `dot(${x}, vec4<f32>(1.0))`;

function forwardSource(d: number, cfg: AttentionConfig, ops: Operand[]): string {
  const [q, k, v, o] = ops;
  const sh = new Shape(d, cfg);
  const U = range(cfg.unroll);
  const st: Stream = { rows: [k, v], scalars: [], limit: 'Nk' };
  const step = (access: (n: string, u: number, i: string) => string) => `${dots(sh, access, [['sa', 'qr', 'k']])}
${range(cfg.perThread)
  .map(
    (r) => `${U.map((u) => `    let s${r}_${u} = select(-1.0e30, ${hsum(`sa${r}_${u}`)}, ok_${u});`).join('\n')}
    let mt${r} = ${U.reduce((e, u) => `max(${e}, s${r}_${u})`, `m${r}`)};
    let alpha${r} = exp2(m${r} - mt${r});
${U.map((u) => `    let p${r}_${u} = exp2(s${r}_${u} - mt${r});`).join('\n')}
    l${r} = l${r} * alpha${r} + ${U.map((u) => `p${r}_${u}`).join(' + ')};
    m${r} = mt${r};`,
  )
  .join('\n')}
${updates(sh, access, [['acc', 'v', (r, u) => `p${r}_${u}`, (x, r) => `${x} * alpha${r}`]])}`;
  return `${declarations(ops)}
${tileDecls(sh, st)}
${MAIN(cfg)}
${operandLets(ops)}
${rowLets(cfg, 'Nq')}
  // q carries scale·log2(e): scores come out in log2 units, ready for exp2.
${loadRows(sh, q, 'qr', ' * sl2')}
${sh.declare('acc')}
${range(cfg.perThread).map((r) => `  var m${r} = -3.0e38;\n  var l${r} = 0.0;`).join('\n')}
${streamLoop(sh, st, step)}
${storeRows(sh, o, 'acc', (r) => `(1.0 / l${r})`)}
${range(cfg.perThread).map((r) => `  if (valid${r}) { ${ops[4].buf}[lse_base + row${r} * lse_sn] = (m${r} + log2(l${r})) * ${Math.LN2}; }`).join('\n')}
}`;
}

function deltaSource(d: number, ops: Operand[]): string {
  return `${declarations(ops)}
const WG = ${WG}u;
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = ${FLAT_INDEX};
  let Nq = pu(0u);
  let H = pu(1u);
  if (i >= Nq * H * pu(2u)) { return; }
  let row = i % Nq;
  let h = (i / Nq) % H;
  let b = i / (Nq * H);
${operandLets(ops)}
  let ob = o_base + row * o_sn;
  let gb = dO_base + row * dO_sn;
  var acc = 0.0;
  for (var c = 0u; c < ${d}u; c++) { acc += f32(${ops[0].buf}[ob + c * o_sd]) * f32(${ops[1].buf}[gb + c * dO_sd]); }
  ${ops[2].buf}[delta_base + row * delta_sn] = acc;
}`;
}

function dqSource(d: number, cfg: AttentionConfig, ops: Operand[]): string {
  const [q, k, v, dO, , , dq] = ops;
  const sh = new Shape(d, cfg);
  const st: Stream = { rows: [k, v], scalars: [], limit: 'Nk' };
  const step = (access: (n: string, u: number, i: string) => string) => `${dots(sh, access, [['sa', 'qr', 'k'], ['sg', 'gr', 'v']])}
${pairs(cfg)
  .map(
    ([r, u]) => `    let p${r}_${u} = select(0.0, exp2(${hsum(`sa${r}_${u}`)} - lse${r}), ok_${u});
    let ds${r}_${u} = p${r}_${u} * (${hsum(`sg${r}_${u}`)} - dlt${r});`,
  )
  .join('\n')}
${updates(sh, access, [['acc', 'k', (r, u) => `ds${r}_${u}`, (x) => x]])}`;
  return `${declarations(ops)}
${tileDecls(sh, st)}
${MAIN(cfg)}
${operandLets(ops)}
${rowLets(cfg, 'Nq')}
${loadRows(sh, q, 'qr', ' * sl2')}
${loadRows(sh, dO, 'gr')}
${range(cfg.perThread)
  .map(
    (r) => `  var lse${r} = 0.0;
  var dlt${r} = 0.0;
  if (valid${r}) {
    lse${r} = ${ops[4].buf}[lse_base + row${r} * lse_sn] * ${Math.LOG2E};
    dlt${r} = ${ops[5].buf}[delta_base + row${r} * delta_sn];
  }`,
  )
  .join('\n')}
${sh.declare('acc')}
${streamLoop(sh, st, step)}
${storeRows(sh, dq, 'acc', () => 'scale')}
}`;
}

function dkdvSource(d: number, cfg: AttentionConfig, ops: Operand[]): string {
  const [q, k, v, dO, lse, delta, dk, dv] = ops;
  const sh = new Shape(d, cfg);
  const st: Stream = { rows: [q, dO], scalars: [{ op: lse, factor: ` * ${Math.LOG2E}` }, { op: delta, factor: '' }], limit: 'Nq' };
  const step = (access: (n: string, u: number, i: string) => string) => `${dots(sh, access, [['sa', 'kr', 'q'], ['sg', 'vr', 'dO']])}
${pairs(cfg)
  .map(
    ([r, u]) => `    let p${r}_${u} = select(0.0, exp2(${hsum(`sa${r}_${u}`)} - lses${u}), ok_${u});
    let ds${r}_${u} = p${r}_${u} * (${hsum(`sg${r}_${u}`)} - deltas${u});`,
  )
  .join('\n')}
${updates(sh, access, [
  ['dvr', 'dO', (r, u) => `p${r}_${u}`, (x) => x],
  ['dkr', 'q', (r, u) => `ds${r}_${u}`, (x) => x],
])}`;
  return `${declarations(ops)}
${tileDecls(sh, st)}
${MAIN(cfg)}
${operandLets(ops)}
${rowLets(cfg, 'Nk')}
  // k carries scale·log2(e) so that k·q is the score in log2 units.
${loadRows(sh, k, 'kr', ' * sl2')}
${loadRows(sh, v, 'vr')}
${sh.declare('dkr')}
${sh.declare('dvr')}
${streamLoop(sh, st, step)}
${storeRows(sh, dk, 'dkr', () => 'scale')}
${storeRows(sh, dv, 'dvr', () => '1.0')}
}`;
}

interface Dims {
  b: number;
  h: number;
  nq: number;
  nk: number;
  d: number;
}

function checkView(op: string, name: string, v: View, shape: readonly number[]): void {
  if (v.shape.length !== shape.length || v.shape.some((s, i) => s !== shape[i])) {
    throw new RangeError(`${op}: ${name} must have shape [${shape.join(', ')}], got [${v.shape.join(', ')}]`);
  }
  if (v.dtype !== 'f32' && v.dtype !== 'f16') throw new TypeError(`${op}: ${name} must be f32 or f16, got ${v.dtype}`);
}

function checkInputs(op: string, q: View, k: View, v: View, lse: View): Dims {
  if (q.shape.length !== 4) throw new RangeError(`${op}: q must be [B, H, Nq, D], got [${q.shape.join(', ')}]`);
  const [b, h, nq, d] = q.shape;
  const nk = k.shape[2] ?? 0;
  checkView(op, 'q', q, [b, h, nq, d]);
  checkView(op, 'k', k, [b, h, nk, d]);
  checkView(op, 'v', v, [b, h, nk, d]);
  if (d < 1 || d > MAX_HEAD_DIM) throw new RangeError(`${op}: head dim ${d} must be in [1, ${MAX_HEAD_DIM}]`);
  if (nk === 0 && nq > 0) throw new RangeError(`${op}: attention over zero keys is undefined (k has Nk = 0)`);
  checkView(op, 'lse', lse, [b, h, nq]);
  if (lse.dtype !== 'f32') throw new TypeError(`${op}: lse must be f32, got ${lse.dtype}`);
  return { b, h, nq, nk, d };
}

function resolveConfig(op: string, d: number, opts: AttentionOptions, pass: 'forward' | 'backward'): AttentionConfig {
  const cfg = opts.config ?? chooseAttentionConfig(d, pass);
  const { rows, perThread, unroll, stage } = cfg;
  const bad =
    !Number.isInteger(rows) || rows < 1 || rows > runtime().limits.maxComputeInvocationsPerWorkgroup ||
    !Number.isInteger(perThread) || perThread < 1 || perThread > 16 ||
    !Number.isInteger(unroll) || unroll < 1 || unroll > 32 ||
    !Number.isInteger(stage) || stage < 0 || stage % unroll !== 0 ||
    stagedBytes(d, stage) > runtime().limits.maxComputeWorkgroupStorageSize;
  if (bad) throw new RangeError(`${op}: invalid configuration ${JSON.stringify(cfg)} for head dim ${d}`);
  return cfg;
}

const header = (s: Dims, scale: number) => new Params().u(s.nq, s.nk).f(scale * Math.LOG2E, scale).u(Math.ceil(s.d / 4));
const cfgKey = (c: AttentionConfig) => `t${c.rows}r${c.perThread}u${c.unroll}s${c.stage}${c.loops ? 'L' : 'U'}`;
/** Operand dtypes and vec4 access, the rest of what the WGSL is specialised on. */
const opsKey = (ops: Operand[]) => ops.map((o) => `${o.view.dtype}${o.v4 ? '/4' : ''}@${o.binding}`).join(',');
const R = (name: string, view: View, v4 = vec4Able(view)): Operand => ({ name, view, access: 'read', v4, buf: '', binding: 0 });
const W = (name: string, view: View, v4 = vec4Able(view)): Operand => ({ name, view, access: 'write', v4, buf: '', binding: 0 });

function dispatchOps(key: string, wgsl: () => string, ops: Operand[], groups: [number, number, number], params: Uint32Array): void {
  const b = bound(ops);
  runtime().dispatch({ key, bindings: [...b.map((o) => o.access), 'uniform'], wgsl }, b.map((o) => o.view.buffer), groups, params);
}

/**
 * o = softmax(scale · q kᵀ) v and lse = log Σ_j exp(scale · q·k_j), per (batch, head, query).
 * q: [B,H,Nq,D], k, v: [B,H,Nk,D], o: [B,H,Nq,D] (any strides); lse: [B,H,Nq] f32.
 */
export function attentionForward(q: View, k: View, v: View, o: View, lse: View, scale: number, opts: AttentionOptions = {}): void {
  const op = 'attentionForward';
  const s = checkInputs(op, q, k, v, lse);
  checkView(op, 'o', o, q.shape);
  if (s.b * s.h * s.nq === 0) return;
  const cfg = resolveConfig(op, s.d, opts, 'forward');
  const ops = bind(op, [R('q', q), R('k', k), R('v', v), W('o', o), W('lse', lse, false)]);
  const groups: [number, number, number] = [Math.ceil(s.nq / (cfg.rows * cfg.perThread)), s.h, s.b];
  dispatchOps(`attn_fwd|d${s.d}|${cfgKey(cfg)}|${opsKey(ops)}`, () => forwardSource(s.d, cfg, ops), ops, groups, packParams(header(s, scale), ops));
}

/**
 * Gradients of attentionForward: dq, dk, dv (shapes of q, k, v; any strides) from dO and the
 * saved o and lse. Allocates one [B,H,Nq] f32 temporary (delta) and releases it after recording.
 */
export function attentionBackward(q: View, k: View, v: View, o: View, lse: View, dO: View, dq: View, dk: View, dv: View, scale: number, opts: AttentionOptions = {}): void {
  const op = 'attentionBackward';
  const s = checkInputs(op, q, k, v, lse);
  for (const [name, t, like] of [['o', o, q], ['dO', dO, q], ['dq', dq, q], ['dk', dk, k], ['dv', dv, v]] as const) checkView(op, name, t, like.shape);
  if (s.b * s.h * (s.nq + s.nk) === 0) return;
  const cfg = resolveConfig(op, s.d, opts, 'backward');
  const rt = runtime();
  const rows = s.b * s.h * s.nq;
  const deltaBuf = rt.allocate(Math.max(rows, 1) * 4, 'attention-delta');
  const delta: View = { buffer: deltaBuf, dtype: 'f32', shape: [s.b, s.h, s.nq], strides: [s.h * s.nq, s.nq, 1], offset: 0 };
  try {
    if (rows > 0) {
      const dOps = bind(op, [R('o', o, false), R('dO', dO, false), W('delta', delta, false)]);
      dispatchOps(`attn_delta|d${s.d}|${opsKey(dOps)}`, () => deltaSource(s.d, dOps), dOps, [...grid1d(rows), 1], packParams(new Params().u(s.nq, s.h, s.b), dOps));
      const qOps = bind(op, [R('q', q), R('k', k), R('v', v), R('dO', dO), R('lse', lse, false), R('delta', delta, false), W('dq', dq)]);
      const groups: [number, number, number] = [Math.ceil(s.nq / (cfg.rows * cfg.perThread)), s.h, s.b];
      dispatchOps(`attn_dq|d${s.d}|${cfgKey(cfg)}|${opsKey(qOps)}`, () => dqSource(s.d, cfg, qOps), qOps, groups, packParams(header(s, scale), qOps));
    }
    const kOps = bind(op, [R('q', q), R('k', k), R('v', v), R('dO', dO), R('lse', lse, false), R('delta', delta, false), W('dk', dk), W('dv', dv)]);
    const groups: [number, number, number] = [Math.ceil(s.nk / (cfg.rows * cfg.perThread)), s.h, s.b];
    dispatchOps(`attn_dkdv|d${s.d}|${cfgKey(cfg)}|${opsKey(kOps)}`, () => dkdvSource(s.d, cfg, kOps), kOps, groups, packParams(header(s, scale), kOps));
  } finally {
    rt.release(deltaBuf);
  }
}
