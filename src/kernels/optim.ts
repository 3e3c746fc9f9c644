/**
 * Fused multi-tensor optimizer kernels: AdamW, SGD (momentum / Nesterov), EMA, the global
 * sum of squares of the gradients and the clip factor, all in place and without read-back.
 *
 * Every parameter lives in its own buffer, so one dispatch binds up to k groups of operands
 * (param, grad, m, v, …) at once, k chosen from maxStorageBuffersPerShaderStage and the 256-byte
 * uniform. Each group owns a run of whole workgroups, so a workgroup finds its group with an
 * unrolled, workgroup-uniform compare chain and then touches one buffer set only. Parameters:
 * the update's named hyper-parameters (lr, bias corrections, …; they change per step), the host
 * grad scale and the element offset into the grad-scale buffer, then per group j
 * `group<j>_first` (its first workgroup), `group<j>_n` (elements) and `group<j>_<operand>_offset`.
 *
 * Kernels are specialised on the group count of the dispatch (≤ k), the operand layout, the
 * workgroup shape and whether a GPU grad-scale buffer is bound; all of that is in the key.
 * Per-step values are uniforms only, so a training loop compiles each pipeline once.
 *
 * The gradient's global norm (sumOfSquares, clipScale) lives in grad-norm.ts; both use the
 * machinery in multi-tensor.ts.
 *
 * WebGPU forbids a writable binding that aliases another binding in the same dispatch, so groups
 * are packed greedily into dispatches in which no written buffer appears twice.
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
import type { FieldType, UniformLayout } from './uniforms.js';
import type { View } from './view.js';

export { groupsPerDispatch, type MultiTensorOptions } from './multi-tensor.js';
export { clipScale, sumOfSquares } from './grad-norm.js';

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
  /** Where a replay of a recorded step reads the learning rate and step from (they change per step). */
  live?: () => { lr: number; step: number };
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

interface ElementwiseUpdate {
  /** Key part; includes every variant that changes the WGSL. */
  name: string;
  operands: readonly Slot[];
  /** Named hyper-parameters (at most HEADER_WORDS − 2 words), read as `params.<name>`. */
  hyper: Record<string, FieldType>;
  /** WGSL statements over `var`s named after the operands, `params.<hyper>` and the grad scale `gs`. */
  body: string;
}

function updateUniforms(spec: ElementwiseUpdate, count: number): UniformLayout {
  return layoutFor(`${spec.name}|${count}`, () =>
    tableFields({ ...spec.hyper, grad_scale: 'f32', grad_scale_offset: 'u32' }, count, spec.operands),
  );
}

function updateSource(spec: ElementwiseUpdate, count: number, scaled: boolean): string {
  const a = spec.operands.length;
  const decls: string[] = [];
  for (let j = 0; j < count; j++) {
    spec.operands.forEach((o, i) => {
      const access = o.access === 'write' ? 'read_write' : 'read';
      decls.push(`@group(0) @binding(${j * a + i}) var<storage, ${access}> b${j}_${o.name}: array<f32>;`);
    });
  }
  let binding = count * a;
  if (scaled) decls.push(`@group(0) @binding(${binding++}) var<storage, read> scale_buf: array<f32>;`);
  const gs = scaled ? 'params.grad_scale * scale_buf[params.grad_scale_offset]' : 'params.grad_scale';
  const chain = groupChain(count, (j) => {
    const offs = spec.operands.map((o) => `let o_${o.name} = params.group${j}_${o.name}_offset;`).join(' ');
    const loads = spec.operands.map((o) => `var ${o.name} = b${j}_${o.name}[o_${o.name} + i];`).join(' ');
    const stores = spec.operands
      .filter((o) => o.access === 'write')
      .map((o) => `b${j}_${o.name}[o_${o.name} + i] = ${o.name};`)
      .join(' ');
    return `    let n = params.group${j}_n; ${offs}
    let base = (w - params.group${j}_first) * CHUNK + lid;
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
${updateUniforms(spec, count).wgsl(binding)}
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

/** Runs `spec` over all groups: one dispatch per k groups. `hyper` gives spec.hyper's values. */
function runUpdate(
  op: string,
  spec: ElementwiseUpdate,
  groups: View[][],
  hyper: Record<string, number>,
  gradScale: number,
  scaleBuf: View | undefined,
  opts: MultiTensorOptions,
  /** Hyper-parameters a replay of a recorded step reads anew (see uniforms.ts `dynamic`). */
  dynamic?: Record<string, () => number>,
): void {
  if (scaleBuf) checkF32(op, 'gradScaleBuffer', scaleBuf, 1);
  const k = groupsPerDispatch(spec.operands.length, scaleBuf ? 1 : 0, opts);
  const rt = runtime();
  for (const chunk of packDispatches(op, groups, spec.operands, k, scaleBuf ? [scaleBuf.buffer] : [])) {
    const count = chunk.length;
    const values: Record<string, number> = { ...hyper, grad_scale: gradScale, grad_scale_offset: scaleBuf?.offset ?? 0 };
    const workgroups = packTable(values, chunk, spec.operands);
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
      updateUniforms(spec, count).pack(values),
      dynamic ? updateUniforms(spec, count).dynamic(dynamic) : undefined,
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
  hyper: {
    /** 1 − lr·wd (decoupled weight decay). */
    decay: 'f32',
    beta1: 'f32',
    one_minus_beta1: 'f32',
    beta2: 'f32',
    one_minus_beta2: 'f32',
    eps: 'f32',
    /** lr / (1 − β1^t): the first moment's bias correction folded into the step. */
    step_size: 'f32',
    /** 1 / sqrt(1 − β2^t). */
    inv_sqrt_bc2: 'f32',
  },
  body: `g = g * gs;
        p = p * params.decay;
        m = params.beta1 * m + params.one_minus_beta1 * g;
        v = params.beta2 * v + params.one_minus_beta2 * g * g;
        p = p - params.step_size * m / (sqrt(v) * params.inv_sqrt_bc2 + params.eps);`,
};

/** The AdamW kernel for `count` groups, with or without a GPU grad-scale buffer. */
export function adamwSource(count: number, scaled: boolean): string {
  return updateSource(ADAMW, count, scaled);
}

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
  const hyper = {
    ...adamwScalars(h.lr, h.step, h),
    beta1: h.beta1,
    one_minus_beta1: 1 - h.beta1,
    beta2: h.beta2,
    one_minus_beta2: 1 - h.beta2,
    eps: h.eps,
  };
  const live = h.live;
  const dynamic = live && {
    decay: () => adamwScalars(live().lr, live().step, h).decay,
    step_size: () => adamwScalars(live().lr, live().step, h).step_size,
    inv_sqrt_bc2: () => adamwScalars(live().lr, live().step, h).inv_sqrt_bc2,
  };
  runUpdate(op, ADAMW, packed, hyper, h.gradScale ?? 1, h.gradScaleBuffer, opts, dynamic);
}

/** The AdamW uniforms that depend on the learning rate and the step (bias corrections). */
function adamwScalars(lr: number, step: number, h: { beta1: number; beta2: number; weightDecay: number }) {
  const bc1 = 1 - h.beta1 ** step;
  const bc2 = 1 - h.beta2 ** step;
  return { decay: 1 - lr * h.weightDecay, step_size: lr / bc1, inv_sqrt_bc2: 1 / Math.sqrt(bc2) };
}

/** first_step: the momentum buffer starts as the gradient; nesterov: the Nesterov form (both 0/1). */
const SGD_HYPER = {
  lr: 'f32',
  momentum: 'f32',
  one_minus_dampening: 'f32',
  weight_decay: 'f32',
  first_step: 'u32',
  nesterov: 'u32',
} as const;
const SGD_GRAD = `g = g * gs + params.weight_decay * p;`;
const SGD_PLAIN: ElementwiseUpdate = {
  name: 'sgd',
  operands: [
    { name: 'p', access: 'write' },
    { name: 'g', access: 'read' },
  ],
  hyper: SGD_HYPER,
  body: `${SGD_GRAD}
        p = p - params.lr * g;`,
};
const SGD_MOMENTUM: ElementwiseUpdate = {
  name: 'sgd-momentum',
  operands: [
    { name: 'p', access: 'write' },
    { name: 'g', access: 'read' },
    { name: 'b', access: 'write' },
  ],
  hyper: SGD_HYPER,
  body: `${SGD_GRAD}
        if (params.first_step != 0u) { b = g; } else { b = params.momentum * b + params.one_minus_dampening * g; }
        if (params.nesterov != 0u) { g = g + params.momentum * b; } else { g = b; }
        p = p - params.lr * g;`,
};

/**
 * SGD with momentum (PyTorch semantics: g ← g·scale + wd·p; buf ← μ buf + (1−dampening) g, the
 * first step buf = g; nesterov: g ← g + μ buf, else g ← buf; p ← p − lr g). With momentum 0 the
 * momentum Views are ignored; otherwise every group needs one.
 */
export function sgdStep(groups: { param: View; grad: View; momentum?: View }[], h: SgdHyper, opts: MultiTensorOptions = {}): void {
  const op = 'sgdStep';
  const useMomentum = h.momentum !== 0;
  if (h.nesterov && (!useMomentum || (h.dampening ?? 0) !== 0))
    throw new RangeError(`${op}: nesterov needs momentum > 0 and dampening 0 (as in PyTorch)`);
  const packed = groups.map((g, i) => {
    const n = sizeOf(g.param.shape);
    checkF32(op, `groups[${i}].param`, g.param);
    checkF32(op, `groups[${i}].grad`, g.grad, n);
    if (!useMomentum) return [g.param, g.grad];
    if (!g.momentum) throw new TypeError(`${op}: groups[${i}] has no momentum buffer but momentum is ${h.momentum}`);
    checkF32(op, `groups[${i}].momentum`, g.momentum, n);
    return [g.param, g.grad, g.momentum];
  });
  const hyper = {
    lr: h.lr,
    momentum: h.momentum,
    one_minus_dampening: 1 - (h.dampening ?? 0),
    weight_decay: h.weightDecay ?? 0,
    first_step: h.firstStep ? 1 : 0,
    nesterov: h.nesterov ? 1 : 0,
  };
  runUpdate(op, useMomentum ? SGD_MOMENTUM : SGD_PLAIN, packed, hyper, h.gradScale ?? 1, h.gradScaleBuffer, opts);
}

const EMA: ElementwiseUpdate = {
  name: 'ema',
  operands: [
    { name: 'e', access: 'write' },
    { name: 'p', access: 'read' },
  ],
  hyper: { decay: 'f32', one_minus_decay: 'f32' },
  body: `e = params.decay * e + params.one_minus_decay * p;`,
};

/** ema ← d·ema + (1−d)·θ for each pair. */
export function emaUpdate(pairs: { ema: View; param: View }[], decay: number, opts: MultiTensorOptions = {}): void {
  const op = 'emaUpdate';
  const packed = pairs.map((q, i) => {
    checkF32(op, `pairs[${i}].ema`, q.ema);
    checkF32(op, `pairs[${i}].param`, q.param, sizeOf(q.ema.shape));
    return [q.ema, q.param];
  });
  runUpdate(op, EMA, packed, { decay, one_minus_decay: 1 - decay }, 1, undefined, opts);
}
