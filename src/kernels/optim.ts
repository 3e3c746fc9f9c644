/**
 * Fused multi-tensor optimizer kernels: AdamW, SGD (momentum / Nesterov), EMA, the global
 * sum of squares of the gradients and the clip factor, all in place and without read-back.
 *
 * Every parameter lives in its own buffer, so one dispatch binds up to k groups of operands
 * (param, grad, m, v, …) at once, k chosen from maxStorageBuffersPerShaderStage and the 256-byte
 * uniform. Each group owns a run of whole workgroups, so a workgroup finds its group with an
 * unrolled, workgroup-uniform compare chain and then touches one buffer set only:
 *
 *   uniform words  0..9   per-kernel hyper-parameters (lr, bias corrections, …; change per step)
 *                  10     host grad scale          11  element offset into the grad-scale buffer
 *                  12+    per group: [first workgroup, element count, offset of each operand]
 *
 * Kernels are specialised on the group count of the dispatch (≤ k), the operand layout, the
 * workgroup shape and whether a GPU grad-scale buffer is bound; all of that is in the key.
 * Per-step values are uniforms only, so a training loop compiles each pipeline once.
 *
 * WebGPU forbids a writable binding that aliases another binding in the same dispatch, so groups
 * are packed greedily into dispatches in which no written buffer appears twice.
 */
import type { PooledBuffer } from '../gpu/buffer-pool.js';
import { runtime } from '../gpu/runtime.js';
import { sizeOf } from '../core/shape.js';
import { Params, paramsDecl } from './common.js';
import { isContiguous, type View } from './view.js';

const WG = 256;
/** Elements per thread (strided by WG, so loads stay coalesced); one workgroup covers CHUNK. */
const PER_THREAD = 4;
const CHUNK = WG * PER_THREAD;
/** Uniform words (the runtime's slot is 256 bytes). */
const UNIFORM_WORDS = 64;
const HEADER_WORDS = 12;
const GRAD_SCALE_AT = 10;
const SCALE_OFFSET_AT = 11;

export interface MultiTensorOptions {
  /** Upper bound on groups per dispatch (below the adapter-derived k); for tests and tuning. */
  maxPerDispatch?: number;
}

export interface AdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1-based, for bias correction. */
  step: number;
  /** Multiplies grads first (clipping / loss scale); default 1. */
  gradScale?: number;
  /** A 1-element f32 View (e.g. from clipScale) the grads are also multiplied by, read on the GPU. */
  gradScaleBuffer?: View;
}

export interface SgdHyper {
  lr: number;
  momentum: number;
  dampening?: number;
  nesterov?: boolean;
  weightDecay?: number;
  /** True on the first step: the momentum buffer is set to the gradient (PyTorch semantics). */
  firstStep: boolean;
  gradScale?: number;
  gradScaleBuffer?: View;
}

type Access = 'read' | 'write';
interface Operand {
  name: string;
  access: Access;
}

/**
 * How many groups of `operandsPerGroup` storage buffers one dispatch binds on this adapter,
 * given `extraBindings` other storage buffers (grad-scale buffer, partial sums).
 */
export function groupsPerDispatch(operandsPerGroup: number, extraBindings: number, opts: MultiTensorOptions = {}): number {
  const byStorage = Math.floor((runtime().limits.maxStorageBuffersPerShaderStage - extraBindings) / operandsPerGroup);
  const byUniform = Math.floor((UNIFORM_WORDS - HEADER_WORDS) / (2 + operandsPerGroup));
  const k = Math.min(byStorage, byUniform, opts.maxPerDispatch ?? Infinity);
  if (!(k >= 1)) throw new RangeError(`optim: cannot bind even one group of ${operandsPerGroup} buffers (limit ${runtime().limits.maxStorageBuffersPerShaderStage}, maxPerDispatch ${opts.maxPerDispatch})`);
  return Math.floor(k);
}

function checkF32(op: string, what: string, v: View, n?: number): void {
  if (v.dtype !== 'f32') throw new TypeError(`${op}: ${what} must be f32, got ${v.dtype}`);
  if (!isContiguous(v)) throw new TypeError(`${op}: ${what} must be contiguous (shape [${v.shape.join(', ')}], strides [${v.strides.join(', ')}])`);
  if (n !== undefined && sizeOf(v.shape) !== n) throw new RangeError(`${op}: ${what} has ${sizeOf(v.shape)} elements, expected ${n} (shape [${v.shape.join(', ')}])`);
}

/**
 * Splits groups into dispatches of at most k groups such that no buffer written in a dispatch is
 * bound there twice. `fixed` are buffers bound to every dispatch (read-only).
 */
function packDispatches(op: string, groups: View[][], operands: readonly Operand[], k: number, fixed: PooledBuffer[]): View[][][] {
  const out: View[][][] = [];
  let cur: View[][] = [];
  const fresh = (): Map<PooledBuffer, Access> => new Map(fixed.map((b) => [b, 'read' as Access]));
  const fits = (into: Map<PooledBuffer, Access>, g: View[]): boolean => {
    const trial = new Map(into);
    for (let i = 0; i < g.length; i++) {
      const a = operands[i].access;
      const prev = trial.get(g[i].buffer);
      if (prev && (prev === 'write' || a === 'write')) return false;
      trial.set(g[i].buffer, a);
    }
    return true;
  };
  let used = fresh();
  groups.forEach((g, gi) => {
    if (sizeOf(g[0].shape) === 0) return;
    if (cur.length < k && fits(used, g)) {
      cur.push(g);
    } else {
      if (cur.length) out.push(cur);
      cur = [];
      used = fresh();
      if (!fits(used, g)) throw new RangeError(`${op}: group ${gi} binds one buffer twice with a write (operands ${operands.map((o) => o.name).join(', ')} and any grad-scale buffer must be distinct buffers)`);
      cur.push(g);
    }
    for (let i = 0; i < g.length; i++) if (used.get(g[i].buffer) !== 'write') used.set(g[i].buffer, operands[i].access);
  });
  if (cur.length) out.push(cur);
  return out;
}

/** Appends the per-group table; returns the total workgroups the dispatch needs. */
function packTable(p: Params, groups: View[][]): number {
  let wg = 0;
  for (const g of groups) {
    const n = sizeOf(g[0].shape);
    p.u(wg, n, ...g.map((v) => v.offset));
    wg += Math.ceil(n / CHUNK);
  }
  return wg;
}

function tableAt(group: number, stride: number): number {
  return HEADER_WORDS + group * stride;
}

/** Workgroup index of a 2-D launch, and the compare chain that picks this workgroup's group. */
function groupChain(count: number, stride: number, body: (j: number, t: number) => string): string {
  const arms: string[] = [];
  for (let j = count - 1; j >= 0; j--) {
    const t = tableAt(j, stride);
    arms.push(`${j === count - 1 ? '' : 'else '}if (w >= pu(${t}u)) {\n${body(j, t)}\n  }`);
  }
  return arms.join(' ');
}

/** 2-D launch covering `workgroups` workgroups (grid1d's rule, counted in workgroups). */
function launch(workgroups: number): [number, number] {
  const max = runtime().limits.maxComputeWorkgroupsPerDimension;
  const y = Math.ceil(workgroups / max);
  return [Math.max(1, Math.ceil(workgroups / y)), Math.max(1, y)];
}

interface ElementwiseUpdate {
  /** Key part; includes every variant that changes the WGSL. */
  name: string;
  operands: readonly Operand[];
  /** WGSL statements over `var`s named after the operands, header accessors pf/pu and `gs`. */
  body: string;
}

function updateSource(spec: ElementwiseUpdate, count: number, scaled: boolean): string {
  const a = spec.operands.length;
  const stride = 2 + a;
  const decls: string[] = [];
  for (let j = 0; j < count; j++) {
    spec.operands.forEach((o, i) => {
      const access = o.access === 'write' ? 'read_write' : 'read';
      decls.push(`@group(0) @binding(${j * a + i}) var<storage, ${access}> b${j}_${o.name}: array<f32>;`);
    });
  }
  let binding = count * a;
  if (scaled) decls.push(`@group(0) @binding(${binding++}) var<storage, read> scale_buf: array<f32>;`);
  const words = HEADER_WORDS + count * stride;
  const gs = scaled ? `pf(${GRAD_SCALE_AT}u) * scale_buf[pu(${SCALE_OFFSET_AT}u)]` : `pf(${GRAD_SCALE_AT}u)`;
  const chain = groupChain(count, stride, (j, t) => {
    const offs = spec.operands.map((o, i) => `let o_${o.name} = pu(${t + 2 + i}u);`).join(' ');
    const loads = spec.operands.map((o) => `var ${o.name} = b${j}_${o.name}[o_${o.name} + i];`).join(' ');
    const stores = spec.operands
      .filter((o) => o.access === 'write')
      .map((o) => `b${j}_${o.name}[o_${o.name} + i] = ${o.name};`)
      .join(' ');
    return `    let n = pu(${t + 1}u); ${offs}
    let base = (w - pu(${t}u)) * CHUNK + lid;
    for (var e = 0u; e < PER_THREAD; e++) {
      let i = base + e * WG;
      if (i < n) {
        ${loads}
        ${spec.body}
        ${stores}
      }
    }`;
  });
  return `${decls.join('\n')}
${paramsDecl(binding, Math.ceil(words / 4))}
const WG = ${WG}u;
const PER_THREAD = ${PER_THREAD}u;
const CHUNK = ${CHUNK}u;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let w = wid.x + wid.y * nwg.x;
  let gs = ${gs};
  ${chain}
}`;
}

/** Runs `spec` over all groups: one dispatch per k groups. `header` fills words 0..9. */
function runUpdate(op: string, spec: ElementwiseUpdate, groups: View[][], header: Params, gradScale: number, scaleBuf: View | undefined, opts: MultiTensorOptions): void {
  if (scaleBuf) checkF32(op, 'gradScaleBuffer', scaleBuf, 1);
  const k = groupsPerDispatch(spec.operands.length, scaleBuf ? 1 : 0, opts);
  if (header.length > GRAD_SCALE_AT) throw new Error(`${op}: header of ${header.length} words overlaps the grad scale`);
  const head = Array.from(header.pad(GRAD_SCALE_AT).f(gradScale).u(scaleBuf?.offset ?? 0).build());
  const rt = runtime();
  for (const chunk of packDispatches(op, groups, spec.operands, k, scaleBuf ? [scaleBuf.buffer] : [])) {
    const count = chunk.length;
    const p = new Params().u(...head);
    const workgroups = packTable(p, chunk);
    const buffers = chunk.flatMap((g) => g.map((v) => v.buffer));
    if (scaleBuf) buffers.push(scaleBuf.buffer);
    const key = `optim|${spec.name}|${spec.operands.map((o) => `${o.name}:${o.access[0]}`).join(',')}|g${count}|s${scaleBuf ? 1 : 0}|wg${WG}x${PER_THREAD}`;
    rt.dispatch(
      {
        key,
        bindings: [...chunk.flatMap(() => spec.operands.map((o) => o.access)), ...(scaleBuf ? ['read' as const] : []), 'uniform'],
        wgsl: () => updateSource(spec, count, scaleBuf !== undefined),
      },
      buffers,
      launch(workgroups),
      p.build(),
    );
  }
}

const ADAMW: ElementwiseUpdate = {
  name: 'adamw',
  operands: [
    { name: 'p', access: 'write' },
    { name: 'g', access: 'read' },
    { name: 'm', access: 'write' },
    { name: 'v', access: 'write' },
  ],
  // 0: 1 − lr·wd, 1: β1, 2: 1 − β1, 3: β2, 4: 1 − β2, 5: eps, 6: lr / (1 − β1^t), 7: 1 / sqrt(1 − β2^t)
  body: `g = g * gs;
        p = p * pf(0u);
        m = pf(1u) * m + pf(2u) * g;
        v = pf(3u) * v + pf(4u) * g * g;
        p = p - pf(6u) * m / (sqrt(v) * pf(7u) + pf(5u));`,
};

/**
 * PyTorch AdamW: p ← p − lr·wd·p; m ← β1 m + (1−β1) g; v ← β2 v + (1−β2) g²;
 * p ← p − lr · (m/(1−β1^t)) / (sqrt(v/(1−β2^t)) + eps). In place; g is first multiplied by
 * gradScale and by gradScaleBuffer[0] when given.
 */
export function adamwStep(groups: { param: View; grad: View; m: View; v: View }[], h: AdamWHyper, opts: MultiTensorOptions = {}): void {
  const op = 'adamwStep';
  if (!(Number.isInteger(h.step) && h.step >= 1)) throw new RangeError(`${op}: step must be an integer ≥ 1 (1-based), got ${h.step}`);
  const packed = groups.map((g, i) => {
    const n = sizeOf(g.param.shape);
    checkF32(op, `groups[${i}].param`, g.param);
    checkF32(op, `groups[${i}].grad`, g.grad, n);
    checkF32(op, `groups[${i}].m`, g.m, n);
    checkF32(op, `groups[${i}].v`, g.v, n);
    return [g.param, g.grad, g.m, g.v];
  });
  const bc1 = 1 - h.beta1 ** h.step;
  const bc2 = 1 - h.beta2 ** h.step;
  const header = new Params().f(1 - h.lr * h.weightDecay, h.beta1, 1 - h.beta1, h.beta2, 1 - h.beta2, h.eps, h.lr / bc1, 1 / Math.sqrt(bc2));
  runUpdate(op, ADAMW, packed, header, h.gradScale ?? 1, h.gradScaleBuffer, opts);
}

// 0: lr, 1: μ, 2: 1 − dampening, 3: weight decay, 6: first step (u32), 7: nesterov (u32)
const SGD_GRAD = `g = g * gs + pf(3u) * p;`;
const SGD_PLAIN: ElementwiseUpdate = {
  name: 'sgd',
  operands: [
    { name: 'p', access: 'write' },
    { name: 'g', access: 'read' },
  ],
  body: `${SGD_GRAD}
        p = p - pf(0u) * g;`,
};
const SGD_MOMENTUM: ElementwiseUpdate = {
  name: 'sgd-momentum',
  operands: [
    { name: 'p', access: 'write' },
    { name: 'g', access: 'read' },
    { name: 'b', access: 'write' },
  ],
  body: `${SGD_GRAD}
        if (pu(6u) != 0u) { b = g; } else { b = pf(1u) * b + pf(2u) * g; }
        if (pu(7u) != 0u) { g = g + pf(1u) * b; } else { g = b; }
        p = p - pf(0u) * g;`,
};

/**
 * SGD with momentum (PyTorch semantics: g ← g·scale + wd·p; buf ← μ buf + (1−dampening) g, the
 * first step buf = g; nesterov: g ← g + μ buf, else g ← buf; p ← p − lr g). With momentum 0 the
 * momentum Views are ignored; otherwise every group needs one.
 */
export function sgdStep(groups: { param: View; grad: View; momentum?: View }[], h: SgdHyper, opts: MultiTensorOptions = {}): void {
  const op = 'sgdStep';
  const useMomentum = h.momentum !== 0;
  if (h.nesterov && (!useMomentum || (h.dampening ?? 0) !== 0)) throw new RangeError(`${op}: nesterov needs momentum > 0 and dampening 0 (as in PyTorch)`);
  const packed = groups.map((g, i) => {
    const n = sizeOf(g.param.shape);
    checkF32(op, `groups[${i}].param`, g.param);
    checkF32(op, `groups[${i}].grad`, g.grad, n);
    if (!useMomentum) return [g.param, g.grad];
    if (!g.momentum) throw new TypeError(`${op}: groups[${i}] has no momentum buffer but momentum is ${h.momentum}`);
    checkF32(op, `groups[${i}].momentum`, g.momentum, n);
    return [g.param, g.grad, g.momentum];
  });
  const header = new Params().f(h.lr, h.momentum, 1 - (h.dampening ?? 0), h.weightDecay ?? 0, 0, 0).u(h.firstStep ? 1 : 0, h.nesterov ? 1 : 0);
  runUpdate(op, useMomentum ? SGD_MOMENTUM : SGD_PLAIN, packed, header, h.gradScale ?? 1, h.gradScaleBuffer, opts);
}

const EMA: ElementwiseUpdate = {
  name: 'ema',
  operands: [
    { name: 'e', access: 'write' },
    { name: 'p', access: 'read' },
  ],
  body: `e = pf(0u) * e + pf(1u) * p;`,
};

/** ema ← d·ema + (1−d)·θ for each pair. */
export function emaUpdate(pairs: { ema: View; param: View }[], decay: number, opts: MultiTensorOptions = {}): void {
  const op = 'emaUpdate';
  const packed = pairs.map((q, i) => {
    checkF32(op, `pairs[${i}].ema`, q.ema);
    checkF32(op, `pairs[${i}].param`, q.param, sizeOf(q.ema.shape));
    return [q.ema, q.param];
  });
  runUpdate(op, EMA, packed, new Params().f(decay, 1 - decay), 1, undefined, opts);
}

const SUMSQ_OPERANDS: readonly Operand[] = [{ name: 'x', access: 'read' }];

/** Tree reduction of `red` (WG values) into red[0]; needs uniform control flow. */
const TREE_REDUCE = `  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    workgroupBarrier();
    if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
  }
  workgroupBarrier();`;

function partialSource(count: number): string {
  const stride = 3;
  const decls = Array.from({ length: count }, (_, j) => `@group(0) @binding(${j}) var<storage, read> x${j}: array<f32>;`);
  const chain = groupChain(count, stride, (j, t) => `    let n = pu(${t + 1}u); let o = pu(${t + 2}u);
    let base = (w - pu(${t}u)) * CHUNK + lid;
    for (var e = 0u; e < PER_THREAD; e++) {
      let i = base + e * WG;
      if (i < n) { let a = x${j}[o + i]; acc = acc + a * a; }
    }`);
  return `${decls.join('\n')}
@group(0) @binding(${count}) var<storage, read_write> partials: array<f32>;
${paramsDecl(count + 1, Math.ceil((HEADER_WORDS + count * stride) / 4))}
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
  // 0: first partial of this dispatch, 1: workgroups with work
  if (lid == 0u && w < pu(1u)) { partials[pu(0u) + w] = red[0]; }
}`;
}

const FINAL_SOURCE = `@group(0) @binding(0) var<storage, read> partials: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
${paramsDecl(2, 1)}
const WG = ${WG}u;
var<workgroup> red: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32) {
  // 0: partial count, 1: output offset. Fixed order: thread lid sums lid, lid + WG, …
  var acc = 0.0;
  for (var i = lid; i < pu(0u); i += WG) { acc = acc + partials[i]; }
  red[lid] = acc;
${TREE_REDUCE}
  if (lid == 0u) { out[pu(1u)] = red[0]; }
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
  const chunks = packDispatches(op, tensors.map((t) => [t]), SUMSQ_OPERANDS, k, []);
  const total = tensors.reduce((s, t) => s + Math.ceil(sizeOf(t.shape) / CHUNK), 0);
  const partials = rt.allocate(Math.max(total, 1) * 4, 'sumsq-partials');
  let first = 0;
  for (const chunk of chunks) {
    const p = new Params().u(first, 0).pad(HEADER_WORDS);
    const workgroups = packTable(p, chunk);
    const words = p.build();
    words[1] = workgroups;
    const count = chunk.length;
    rt.dispatch(
      { key: `optim|sumsq-partial|g${count}|wg${WG}x${PER_THREAD}`, bindings: [...chunk.map(() => 'read' as const), 'write', 'uniform'], wgsl: () => partialSource(count) },
      [...chunk.map((g) => g[0].buffer), partials],
      launch(workgroups),
      words,
    );
    first += workgroups;
  }
  rt.dispatch({ key: `optim|sumsq-final|wg${WG}`, bindings: ['read', 'write', 'uniform'], wgsl: () => FINAL_SOURCE }, [partials, out.buffer], [1], new Params().u(first, out.offset).build());
  // Safe while the batch is pending: the pool reuses a buffer only after the submit that used it.
  rt.release(partials);
}

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
  const wgsl = () => `${same ? '' : '@group(0) @binding(0) var<storage, read> src: array<f32>;\n'}@group(0) @binding(${same ? 0 : 1}) var<storage, read_write> io: array<f32>;
${paramsDecl(same ? 1 : 2, 1)}
@compute @workgroup_size(1)
fn main() {
  // 0: max norm, 1: sumsq offset, 2: output offset
  io[pu(2u)] = min(1.0, pf(0u) / (sqrt(${src}[pu(1u)]) + 1e-6));
}`;
  runtime().dispatch(
    { key: `optim|clip-scale|${same ? 'aliased' : 'split'}`, bindings: same ? ['write', 'uniform'] : ['read', 'write', 'uniform'], wgsl },
    same ? [scaleOut.buffer] : [sumsq.buffer, scaleOut.buffer],
    [1],
    new Params().f(maxNorm).u(sumsq.offset, scaleOut.offset).build(),
  );
}
