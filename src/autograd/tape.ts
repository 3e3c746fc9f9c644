/**
 * Reverse-mode autograd: each differentiable op records a node with its inputs, the tensors it
 * saved, and one closure that maps the output gradient to input gradients. backward() walks the
 * nodes in reverse topological order and accumulates gradients (micrograd's shape, kept tiny).
 */
import { contiguousCopy, full } from '../tensor/creation.js';
import { map } from './ops/elementwise.js';
import { fmt, shapesEqual } from '../tensor/shape.js';
import { Tensor, viewOf, type GradNode } from '../tensor/tensor.js';

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn without recording gradients (inference, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    const r = fn();
    if (r instanceof Promise) {
      return r.finally(() => (gradEnabled = prev)) as T;
    }
    gradEnabled = prev;
    return r;
  } catch (e) {
    gradEnabled = prev;
    throw e;
  }
}

class Node implements GradNode {
  released = false;
  constructor(
    readonly op: string,
    readonly inputs: readonly (Tensor | null)[],
    private saved: Tensor[],
    private fn: (grad: Tensor, saved: Tensor[]) => (Tensor | null | undefined)[],
  ) {}
  backward(grad: Tensor): (Tensor | null | undefined)[] {
    if (this.released) throw new Error(`backward through '${this.op}' a second time: its saved tensors were freed (the graph is freed after backward)`);
    return this.fn(grad, this.saved);
  }
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const s of this.saved) s.dispose();
    this.saved = [];
  }
}

/**
 * Records `out = op(inputs)` on the tape when gradients are enabled and any input requires them.
 * `save` lists tensors the backward needs; they are held (storage retained) until the node is
 * released, independent of the scopes that created them.
 */
export function record(
  op: string,
  out: Tensor,
  inputs: readonly (Tensor | null | undefined)[],
  backward: (grad: Tensor, saved: Tensor[]) => (Tensor | null | undefined)[],
  save: Tensor[] = [],
): Tensor {
  if (!gradEnabled || !inputs.some((t) => t?.requiresGrad)) return out;
  const held = save.map((t) => viewOf(t, t.shape, t.strides, t.offset).keep());
  out.gradFn = new Node(op, inputs.map((t) => t ?? null), held, backward);
  out.requiresGrad = true;
  return out;
}

function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<GradNode>();
  // Iterative DFS: deep transformer graphs would overflow recursion.
  const stack: [Tensor, number][] = [[root, 0]];
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const node = t.gradFn!;
    if (i === 0 && seen.has(node)) {
      stack.pop();
      continue;
    }
    seen.add(node);
    if (i < node.inputs.length) {
      top[1]++;
      const inp = node.inputs[i];
      if (inp?.gradFn && !seen.has(inp.gradFn)) stack.push([inp, 0]);
    } else {
      order.push(t);
      stack.pop();
    }
  }
  return order.reverse();
}

export interface BackwardOptions {
  /** Keep saved tensors so backward can run through the graph again. */
  retainGraph?: boolean;
}

/** Accumulates d(root)/d(leaf) into every leaf's `.grad`. */
export function backward(root: Tensor, grad?: Tensor, opts: BackwardOptions = {}): void {
  if (!root.requiresGrad) throw new Error(`backward: the tensor ${fmt(root.shape)} does not require grad (no input of the computation had requiresGrad = true)`);
  if (!grad && root.size !== 1) throw new Error(`backward: a gradient argument is needed for a non-scalar output of shape ${fmt(root.shape)}`);
  if (grad && !shapesEqual(grad.shape, root.shape)) throw new Error(`backward: gradient shape ${fmt(grad.shape)} does not match output shape ${fmt(root.shape)}`);
  const prev = gradEnabled;
  gradEnabled = false;
  const owned = new Set<Tensor>();
  try {
    const seed = grad ?? onesLike(root);
    if (!grad) owned.add(seed);
    if (!root.gradFn) {
      accumulateLeaf(root, seed, owned);
      return;
    }
    const order = topoOrder(root);
    const grads = new Map<GradNode, Tensor>([[root.gradFn, seed]]);
    for (const t of order) {
      const node = t.gradFn!;
      const g = grads.get(node);
      grads.delete(node);
      if (!g) continue;
      const raw = node.backward(g);
      // Rules may return the incoming gradient itself, or one tensor for two inputs (x + x):
      // give each input its own Tensor object (a view sharing storage) so disposal stays per-use.
      const distinct = new Set<Tensor>([g]);
      const inGrads = raw.map((gi) => {
        if (!gi) return gi;
        if (distinct.has(gi)) gi = viewOf(gi, gi.shape, gi.strides, gi.offset);
        distinct.add(gi);
        return gi;
      });
      if (owned.has(g)) {
        g.dispose();
        owned.delete(g);
      }
      node.inputs.forEach((inp, i) => {
        const gi = inGrads[i];
        if (!inp || !gi || !inp.requiresGrad) {
          if (gi && gi !== g) gi.dispose();
          return;
        }
        if (!shapesEqual(gi.shape, inp.shape)) {
          throw new Error(`backward: gradient rule of '${node.op}' returned shape ${fmt(gi.shape)} for an input of shape ${fmt(inp.shape)} (internal error)`);
        }
        owned.add(gi);
        if (inp.gradFn) {
          const prevG = grads.get(inp.gradFn);
          if (prevG) {
            grads.set(inp.gradFn, addInto(prevG, gi, owned));
          } else grads.set(inp.gradFn, gi);
        } else accumulateLeaf(inp, gi, owned);
      });
      if (!opts.retainGraph) node.release();
    }
  } finally {
    for (const t of owned) t.dispose();
    gradEnabled = prev;
  }
}

function onesLike(t: Tensor): Tensor {
  return full(t.shape, 1, { dtype: t.dtype });
}

/** Gradient accumulation: a plain sum, not recorded. */
function addTensors(a: Tensor, b: Tensor): Tensor {
  return map('add', [a, b], 'in0 + in1', { dtype: a.dtype });
}

function addInto(a: Tensor, b: Tensor, owned: Set<Tensor>): Tensor {
  const s = addTensors(a, b);
  owned.delete(a);
  owned.delete(b);
  a.dispose();
  b.dispose();
  owned.add(s);
  return s;
}

function accumulateLeaf(leaf: Tensor, g: Tensor, owned: Set<Tensor>): void {
  owned.delete(g);
  if (g.storage.refs > 1 || !g.isContiguous || g.offset !== 0) {
    // A leaf's .grad owns its storage: optimizers and clipping may update it in place.
    const c = contiguousCopy(g);
    g.dispose();
    g = c;
  }
  if (leaf.grad) {
    const s = addTensors(leaf.grad, g);
    leaf.grad.dispose();
    g.dispose();
    leaf.grad = s.keep();
  } else {
    // The gradient outlives the scope it was computed in.
    leaf.grad = g.keep();
  }
}

/** Releases the saved tensors of every node reachable from `t` (for graphs never backpropagated). */
export function releaseGraph(t: Tensor): void {
  if (!t.gradFn) return;
  for (const x of topoOrder(t)) x.gradFn!.release();
}
