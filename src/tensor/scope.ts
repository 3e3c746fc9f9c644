/**
 * scope(fn): every tensor created inside fn is disposed when fn returns, except the tensors in
 * its return value (found in arrays, plain objects, Maps) and tensors kept with `t.keep()`.
 * Autograd nodes that only the disposed tensors could reach are released too.
 */
import { runtime } from '../gpu/runtime.js';
import { liveTensorCount, nextTensorId, scopeStack, Tensor } from './tensor.js';

function collectTensors(v: unknown, out: Set<Tensor>, seen = new Set<unknown>()): void {
  if (v === null || typeof v !== 'object' || seen.has(v)) return;
  seen.add(v);
  if (v instanceof Tensor) {
    out.add(v);
    return;
  }
  if (Array.isArray(v)) for (const x of v) collectTensors(x, out, seen);
  else if (v instanceof Map) for (const x of v.values()) collectTensors(x, out, seen);
  else if (Object.getPrototypeOf(v) === Object.prototype) for (const x of Object.values(v)) collectTensors(x, out, seen);
}

/**
 * Autograd nodes reachable from `roots` through tensors created since `firstId`. A tensor's
 * node only has inputs created before it, so an older tensor never leads back into the scope:
 * the walk stops there and costs what the scope created, not the whole graph behind it.
 */
function reachableNodes(roots: Set<Tensor>, firstId: number): Set<unknown> {
  const nodes = new Set<unknown>();
  const stack = [...roots];
  while (stack.length) {
    const t = stack.pop()!;
    const n = t.gradFn;
    if (!n || nodes.has(n) || t.id < firstId) continue;
    nodes.add(n);
    for (const i of n.inputs) if (i) stack.push(i);
  }
  return nodes;
}

function closeScope(tracked: Set<Tensor>, firstId: number, result: unknown): void {
  const keep = new Set<Tensor>();
  collectTensors(result, keep);
  const live = reachableNodes(keep, firstId);
  for (const t of tracked) {
    if (keep.has(t)) continue;
    if (t.gradFn && !live.has(t.gradFn)) t.gradFn.release();
    t.dispose();
  }
  // Returned tensors belong to the enclosing scope, if any.
  const parent = scopeStack[scopeStack.length - 1];
  if (parent) for (const t of keep) if (tracked.has(t)) parent.add(t);
}

export function scope<T>(fn: () => T): T {
  const tracked = new Set<Tensor>();
  const firstId = nextTensorId();
  scopeStack.push(tracked);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopeStack.pop();
    closeScope(tracked, firstId, undefined);
    throw e;
  }
  scopeStack.pop();
  if (result instanceof Promise) {
    // Leave the scope stack as it was before reporting the misuse.
    closeScope(tracked, firstId, undefined);
    throw new TypeError('scope: fn returned a Promise; use scopeAsync for async functions');
  }
  closeScope(tracked, firstId, result);
  return result;
}

/**
 * Async variant: tensors created while fn runs (including by other async code interleaved with
 * it) are tracked, so keep concurrent async work out of it.
 */
export async function scopeAsync<T>(fn: () => Promise<T>): Promise<T> {
  const tracked = new Set<Tensor>();
  const firstId = nextTensorId();
  scopeStack.push(tracked);
  const pop = () => {
    const i = scopeStack.lastIndexOf(tracked);
    if (i >= 0) scopeStack.splice(i, 1);
  };
  try {
    const result = await fn();
    pop();
    closeScope(tracked, firstId, result);
    return result;
  } catch (e) {
    pop();
    closeScope(tracked, firstId, undefined);
    throw e;
  }
}

export interface MemoryStats {
  liveTensors: number;
  liveBuffers: number;
  liveBytes: number;
  pooledBuffers: number;
  pooledBytes: number;
  buffersCreated: number;
  pipelines: number;
  /** Storage planned by the compiled steps alive now (their intermediates and input slots; see compile.ts). */
  compiledPlannedBytes: number;
}

export function memoryStats(): MemoryStats {
  const s = runtime().stats();
  return {
    liveTensors: liveTensorCount(),
    liveBuffers: s.liveBuffers,
    liveBytes: s.liveBytes,
    pooledBuffers: s.pooledBuffers,
    pooledBytes: s.pooledBytes,
    buffersCreated: s.created,
    pipelines: s.pipelines,
    compiledPlannedBytes: s.plannedBytes,
  };
}
