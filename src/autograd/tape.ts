/**
 * Reverse-mode autograd: each differentiable op records a node with its inputs, the tensors it
 * saved, and one closure that maps the output gradient to input gradients. backward() walks the
 * nodes in reverse topological order and accumulates gradients (micrograd's shape, kept tiny).
 */
import { mapInto } from '../kernels/elementwise.js';
import { contiguousCopy, full, zeros } from '../tensor/creation.js';
import { scope } from '../tensor/scope.js';
import { fmt, shapesEqual } from '../core/shape.js';
import { type Tensor, viewOf, type BackwardOptions, type GradNode } from '../tensor/tensor.js';

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

/**
 * A gradient that is non-zero only in a window of its input (the backward of narrow/slice):
 * `grad` fills [start, start + grad.shape[dim]) along `dim`. The tape adds it into the window of
 * the accumulated gradient instead of materialising zeros around it, so chunked outputs
 * (adaLN's six chunks, SwiGLU's two halves) cost one fill and one copy per chunk.
 */
export class SliceGrad {
  constructor(
    readonly grad: Tensor,
    readonly dim: number,
    readonly start: number,
  ) {}
}

export type GradResult = Tensor | SliceGrad | null | undefined;

class Node implements GradNode {
  released = false;
  constructor(
    readonly op: string,
    readonly inputs: readonly (Tensor | null)[],
    private saved: Tensor[],
    private fn: (grad: Tensor, saved: Tensor[]) => GradResult[],
  ) {}
  backward(grad: Tensor): GradResult[] {
    if (this.released)
      throw new Error(`backward through '${this.op}' a second time: its saved tensors were freed (the graph is freed after backward)`);
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
  backward: (grad: Tensor, saved: Tensor[]) => GradResult[],
  save: Tensor[] = [],
): Tensor {
  if (!gradEnabled || !inputs.some((t) => t?.requiresGrad)) return out;
  const held = save.map((t) => viewOf(t, t.shape, t.strides, t.offset).keep());
  out.gradFn = new Node(
    op,
    inputs.map((t) => t ?? null),
    held,
    backward,
  );
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

export type { BackwardOptions } from '../tensor/tensor.js';

/** Accumulates d(root)/d(leaf) into every leaf's `.grad`. */
export function backward(root: Tensor, grad?: Tensor, opts: BackwardOptions = {}): void {
  if (!root.requiresGrad)
    throw new Error(`backward: the tensor ${fmt(root.shape)} does not require grad (no input of the computation had requiresGrad = true)`);
  if (!grad && root.size !== 1)
    throw new Error(`backward: a gradient argument is needed for a non-scalar output of shape ${fmt(root.shape)}`);
  if (grad && !shapesEqual(grad.shape, root.shape))
    throw new Error(`backward: gradient shape ${fmt(grad.shape)} does not match output shape ${fmt(root.shape)}`);
  const prev = gradEnabled;
  gradEnabled = false;
  // Gradient tensors the tape created and may free or update in place.
  const owned = new Set<Tensor>();
  try {
    const seed = grad ?? onesLike(root);
    if (!grad) owned.add(seed);
    if (!root.gradFn) {
      root.grad = accumulate(root.grad, seed, root, owned, true);
      return;
    }
    const order = topoOrder(root);
    const grads = new Map<GradNode, Tensor>([[root.gradFn, seed]]);
    for (const t of order) {
      const node = t.gradFn!;
      const g = grads.get(node);
      grads.delete(node);
      if (!g) continue;
      // The rule runs in a scope: its temporaries go when it returns, its gradients stay.
      const raw = scope(() => {
        const grads = node.backward(g) as GradResult[];
        return { grads, keep: grads.map((r) => (r instanceof SliceGrad ? r.grad : r)) };
      }).grads;
      // Rules may return the incoming gradient itself, or one tensor for two inputs (x + x):
      // give each input its own Tensor object (a view sharing storage) so disposal stays per-use.
      const distinct = new Set<Tensor>([g]);
      const inGrads = raw.map((r) => {
        if (!r) return r;
        let gi = r instanceof SliceGrad ? r.grad : r;
        if (distinct.has(gi)) gi = viewOf(gi, gi.shape, gi.strides, gi.offset);
        distinct.add(gi);
        return r instanceof SliceGrad ? new SliceGrad(gi, r.dim, r.start) : gi;
      });
      node.inputs.forEach((inp, i) => {
        const r = inGrads[i];
        if (!r) return;
        const gi = r instanceof SliceGrad ? r.grad : r;
        if (!inp?.requiresGrad) {
          gi.dispose();
          return;
        }
        if (!(r instanceof SliceGrad) && !shapesEqual(gi.shape, inp.shape)) {
          throw new Error(
            `backward: gradient rule of '${node.op}' returned shape ${fmt(gi.shape)} for an input of shape ${fmt(inp.shape)} (internal error)`,
          );
        }
        owned.add(gi);
        if (inp.gradFn) grads.set(inp.gradFn, accumulate(grads.get(inp.gradFn), r, inp, owned, false));
        else inp.grad = accumulate(inp.grad, r, inp, owned, true);
      });
      if (owned.has(g)) {
        g.dispose();
        owned.delete(g);
      }
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

/**
 * Whether `t` can be updated in place: nothing else shares its storage. A leaf's .grad must
 * also be contiguous (optimizers update it as a flat buffer).
 */
function exclusive(t: Tensor, leaf: boolean): boolean {
  return t.storage.refs === 1 && (!leaf || (t.isContiguous && t.offset === 0));
}

/** A zero tensor shaped like `like`, dense in the order of like's strides (outermost first). */
function zerosInLayoutOf(like: Tensor, dtype: Tensor['dtype']): Tensor {
  const dims = like.shape.map((_, i) => i).sort((a, b) => like.strides[b] - like.strides[a] || a - b);
  const physical = zeros(
    dims.map((d) => like.shape[d]),
    { dtype },
  );
  const strides = new Array<number>(like.rank);
  dims.forEach((d, i) => (strides[d] = physical.strides[i]));
  const v = viewOf(physical, like.shape, strides, 0);
  physical.dispose();
  return v;
}

/**
 * Adds `r` (a dense gradient or a windowed SliceGrad) to the running gradient `prev` of an
 * input of shape `shape`, in place when the running gradient is exclusively the tape's (or the
 * leaf's). Returns the new running gradient; `leaf` results are kept out of scopes.
 */
function accumulate(prev: Tensor | null | undefined, r: Tensor | SliceGrad, input: Tensor, owned: Set<Tensor>, leaf: boolean): Tensor {
  const g = r instanceof SliceGrad ? r.grad : r;
  owned.delete(g);
  let acc: Tensor;
  if (!prev) {
    if (r instanceof SliceGrad) {
      // Non-leaf gradients mirror the input's memory order, so the views upstream of it (a
      // permute of a reshape, as in q/k/v split from a fused qkv) map back without copies.
      acc = leaf ? zeros(input.shape, { dtype: g.dtype }) : zerosInLayoutOf(input, g.dtype);
      addWindow(acc, r, false);
      g.dispose();
    } else if (leaf && !exclusive(g, true)) {
      // A leaf's .grad owns its storage: optimizers and clipping may update it in place.
      acc = contiguousCopy(g);
      g.dispose();
    } else acc = g;
  } else {
    const inPlace = leaf ? exclusive(prev, true) : owned.has(prev) && exclusive(prev, false);
    acc = inPlace ? prev : contiguousCopy(prev);
    if (!inPlace && !leaf) {
      owned.delete(prev);
      prev.dispose();
    } else if (!inPlace) prev.dispose();
    addWindow(acc, r instanceof SliceGrad ? r : new SliceGrad(g, 0, 0), true);
    g.dispose();
  }
  if (leaf) return acc.keep();
  owned.add(acc);
  return acc;
}

/** acc[window] (+)= r.grad, in place; a full-size gradient is the window starting at 0. */
function addWindow(acc: Tensor, r: SliceGrad, add: boolean): void {
  const g = r.grad;
  const dst =
    g.rank === 0 || shapesEqual(g.shape, acc.shape)
      ? viewOf(acc, acc.shape, acc.strides, acc.offset)
      : viewOf(acc, g.shape, acc.strides, acc.offset + r.start * acc.strides[r.dim]);
  mapInto(
    {
      name: add ? 'grad_accumulate' : 'copy',
      expr: add ? 'acc + in0' : 'in0',
      compute: g.dtype === 'f16' ? 'f32' : g.dtype === 'f32' ? 'f32' : g.dtype,
      readsOutput: add,
    },
    [g],
    dst,
  );
  dst.dispose();
}
