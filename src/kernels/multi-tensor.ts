/**
 * The multi-tensor machinery the optimizer kernels (optim.ts) and the gradient-norm kernels
 * (grad-norm.ts) share: groups of operands (one buffer each) packed into dispatches of at most k
 * groups, a per-group table in the uniform, and the compare chain by which a workgroup finds its
 * group. See optim.ts for the scheme.
 */
import type { PooledBuffer } from '../gpu/buffer-pool.js';
import { runtime } from '../gpu/runtime.js';
import { sizeOf } from '../core/shape.js';
import { uniforms, type FieldType, type UniformLayout } from './uniforms.js';
import { isContiguous, type View } from './view.js';

export const WG = 256;
/** Elements per thread (strided by WG, so loads stay coalesced); one workgroup covers CHUNK. */
export const PER_THREAD = 4;
export const CHUNK = WG * PER_THREAD;
/** Uniform words (the runtime's slot is 256 bytes). */
const UNIFORM_WORDS = 64;
/** Words before the group table: at most 10 hyper-parameters, the grad scale and its offset. */
const HEADER_WORDS = 12;

export interface MultiTensorOptions {
  /** Upper bound on groups per dispatch (below the adapter-derived k); for tests and tuning. */
  maxPerDispatch?: number;
}

export type Access = 'read' | 'write';
/** One operand position of a group (param, grad, m, …): its name in the WGSL and its access. */
export interface Slot {
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
  if (!(k >= 1))
    throw new RangeError(
      `optim: cannot bind even one group of ${operandsPerGroup} buffers (limit ${runtime().limits.maxStorageBuffersPerShaderStage}, maxPerDispatch ${opts.maxPerDispatch})`,
    );
  return Math.floor(k);
}

export function checkF32(op: string, what: string, v: View, n?: number): void {
  if (v.dtype !== 'f32') throw new TypeError(`${op}: ${what} must be f32, got ${v.dtype}`);
  if (!isContiguous(v))
    throw new TypeError(`${op}: ${what} must be contiguous (shape [${v.shape.join(', ')}], strides [${v.strides.join(', ')}])`);
  if (n !== undefined && sizeOf(v.shape) !== n)
    throw new RangeError(`${op}: ${what} has ${sizeOf(v.shape)} elements, expected ${n} (shape [${v.shape.join(', ')}])`);
}

/**
 * Splits groups into dispatches of at most k groups such that no buffer written in a dispatch is
 * bound there twice. `fixed` are buffers bound to every dispatch (read-only).
 */
export function packDispatches(op: string, groups: View[][], operands: readonly Slot[], k: number, fixed: PooledBuffer[]): View[][][] {
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
      if (!fits(used, g))
        throw new RangeError(
          `${op}: group ${gi} binds one buffer twice with a write (operands ${operands.map((o) => o.name).join(', ')} and any grad-scale buffer must be distinct buffers)`,
        );
      cur.push(g);
    }
    for (let i = 0; i < g.length; i++) if (used.get(g[i].buffer) !== 'write') used.set(g[i].buffer, operands[i].access);
  });
  if (cur.length) out.push(cur);
  return out;
}

/** The per-group table's values; returns the total workgroups the dispatch needs. */
export function packTable(values: Record<string, number>, groups: View[][], slots: readonly Slot[]): number {
  let wg = 0;
  groups.forEach((g, j) => {
    const n = sizeOf(g[0].shape);
    values[`group${j}_first`] = wg;
    values[`group${j}_n`] = n;
    slots.forEach((o, i) => (values[`group${j}_${o.name}_offset`] = g[i].offset));
    wg += Math.ceil(n / CHUNK);
  });
  return wg;
}

/** Uniform fields: a header, then the per-group table for `count` groups of `slots`. */
export function tableFields(header: Record<string, FieldType>, count: number, slots: readonly Slot[]): Record<string, FieldType> {
  const fields = { ...header };
  for (let j = 0; j < count; j++) {
    fields[`group${j}_first`] = 'u32';
    fields[`group${j}_n`] = 'u32';
    for (const o of slots) fields[`group${j}_${o.name}_offset`] = 'u32';
  }
  return fields;
}

const layouts = new Map<string, UniformLayout>();
export function layoutFor(key: string, fields: () => Record<string, FieldType>): UniformLayout {
  let l = layouts.get(key);
  if (!l) layouts.set(key, (l = uniforms(fields())));
  return l;
}

/** The compare chain that picks this workgroup's group (w: its flat index; uniform per workgroup). */
export function groupChain(count: number, body: (j: number) => string): string {
  const arms: string[] = [];
  for (let j = count - 1; j >= 0; j--) arms.push(`${j === count - 1 ? '' : 'else '}if (w >= params.group${j}_first) {\n${body(j)}\n  }`);
  return arms.join(' ');
}

/** 2-D launch covering `workgroups` workgroups (grid1d's rule, counted in workgroups). */
export function launch(workgroups: number): [number, number] {
  const max = runtime().limits.maxComputeWorkgroupsPerDimension;
  const y = Math.ceil(workgroups / max);
  return [Math.max(1, Math.ceil(workgroups / y)), Math.max(1, y)];
}
