/**
 * Module: named parameters, buffers and children, PyTorch-style state dicts and train/eval mode.
 * Parameters are long-lived tensors (kept out of scopes); loading writes into their existing
 * storage so optimizers holding them stay valid. Every module's `forward` runs in a scope (see
 * the constructor), so a forward is written as plain math with no disposal in it.
 */
import { fmt, shapesEqual } from '../core/shape.js';
import { copyInto, writeHost } from '../tensor/copy.js';
import { scope } from '../tensor/scope.js';
import { Tensor } from '../tensor/tensor.js';

/** Host-side tensor data as read from a checkpoint. */
export interface HostTensor {
  shape: readonly number[];
  data: Float32Array | Int32Array | Uint32Array;
}

export type StateValue = Tensor | HostTensor;

export class StateDictError extends Error {
  constructor(
    readonly missing: string[],
    readonly unexpected: string[],
    readonly mismatched: string[],
    model: string,
  ) {
    const parts: string[] = [];
    if (missing.length) parts.push(`missing keys (${missing.length}): ${missing.join(', ')}`);
    if (unexpected.length) parts.push(`unexpected keys (${unexpected.length}): ${unexpected.join(', ')}`);
    if (mismatched.length) parts.push(`shape mismatches (${mismatched.length}): ${mismatched.join('; ')}`);
    super(`loadStateDict(${model}): ${parts.join('\n')}`);
    this.name = 'StateDictError';
  }
}

export class Module {
  training = true;
  private _params = new Map<string, Tensor>();
  private _buffers = new Map<string, { t: Tensor; persistent: boolean }>();
  private _children = new Map<string, Module>();

  /**
   * Calling a module runs its forward inside a scope that keeps only what forward returns
   * (tensors, or arrays / plain objects / Maps of them), as tfjs layers do with `tidy`: every
   * temporary is freed when forward returns, and autograd keeps what backward needs by itself.
   * The wrapping is done once per instance, here, so a subclass just defines `forward` and every
   * caller (a parent module, user code, a test) gets the scoped one. forward must therefore be
   * synchronous (scope() rejects a Promise); reading results back belongs to the caller.
   */
  constructor() {
    const forward: unknown = (this as { forward?: unknown }).forward;
    if (typeof forward === 'function') {
      const unscoped = forward as (...args: unknown[]) => unknown;
      Object.defineProperty(this, 'forward', {
        configurable: true,
        writable: true,
        enumerable: false,
        value: (...args: unknown[]) => scope(() => unscoped.apply(this, args)),
      });
    }
  }

  /** Registers a trainable parameter (requiresGrad unless `frozen`). */
  protected param(name: string, t: Tensor, opts: { frozen?: boolean } = {}): Tensor {
    t.keep();
    t.requiresGrad = !opts.frozen;
    t.name = name;
    this._params.set(name, t);
    return t;
  }

  /** Registers a buffer: state that is not trained (tables, running stats). */
  protected buffer(name: string, t: Tensor, opts: { persistent?: boolean } = {}): Tensor {
    t.keep();
    t.name = name;
    this._buffers.set(name, { t, persistent: opts.persistent ?? true });
    return t;
  }

  protected child<M extends Module>(name: string, m: M): M {
    this._children.set(name, m);
    return m;
  }

  *namedChildren(): Iterable<[string, Module]> {
    yield* this._children;
  }

  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [k, t] of this._params) out.push([prefix + k, t]);
    for (const [k, m] of this._children) out.push(...m.namedParameters(`${prefix}${k}.`));
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** Parameters that are trained (requiresGrad). */
  trainableParameters(): Tensor[] {
    return this.parameters().filter((t) => t.requiresGrad);
  }

  namedBuffers(prefix = '', persistentOnly = false): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [k, b] of this._buffers) if (!persistentOnly || b.persistent) out.push([prefix + k, b.t]);
    for (const [k, m] of this._children) out.push(...m.namedBuffers(`${prefix}${k}.`, persistentOnly));
    return out;
  }

  /** Parameters and persistent buffers by their state-dict keys. */
  stateDict(): Map<string, Tensor> {
    return new Map([...this.namedParameters(), ...this.namedBuffers('', true)]);
  }

  numParameters(): number {
    return this.parameters().reduce((s, t) => s + t.size, 0);
  }

  /**
   * Copies values into the module's tensors. strict (default): every key must be present, none
   * extra, shapes equal — all problems are reported together in one StateDictError.
   */
  loadStateDict(
    state: Map<string, StateValue> | Record<string, StateValue>,
    opts: { strict?: boolean } = {},
  ): { missing: string[]; unexpected: string[] } {
    const strict = opts.strict ?? true;
    const entries = state instanceof Map ? state : new Map(Object.entries(state));
    const own = this.stateDict();
    const missing = [...own.keys()].filter((k) => !entries.has(k));
    const unexpected = [...entries.keys()].filter((k) => !own.has(k));
    const mismatched: string[] = [];
    for (const [k, t] of own) {
      const v = entries.get(k);
      if (v && !shapesEqual(v.shape, t.shape)) mismatched.push(`${k}: checkpoint ${fmt(v.shape)} vs model ${fmt(t.shape)}`);
    }
    if (mismatched.length || (strict && (missing.length || unexpected.length))) {
      throw new StateDictError(missing, unexpected, mismatched, this.constructor.name);
    }
    for (const [k, t] of own) {
      const v = entries.get(k);
      if (v) assignInto(t, v);
    }
    return { missing, unexpected };
  }

  train(mode = true): this {
    this.training = mode;
    for (const m of this._children.values()) m.train(mode);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Freezes (or unfreezes) every parameter. */
  requiresGrad_(flag: boolean): this {
    for (const p of this.parameters()) p.requiresGrad = flag;
    return this;
  }

  /** Frees every parameter and buffer. */
  dispose(): void {
    for (const t of this.parameters()) t.dispose();
    for (const [, t] of this.namedBuffers()) t.dispose();
  }
}

/** Writes `v` into the storage of `t` (same shape), converting dtype if needed. */
function assignInto(t: Tensor, v: StateValue): void {
  if (v instanceof Tensor) copyInto(t, v);
  else writeHost(t, v.data);
}

/**
 * Runs `x` through a stack of layers in order, freeing each hidden state as soon as the next one
 * exists: inference through a deep stack then holds one hidden state at a time instead of all of
 * them until the enclosing forward's scope closes (training keeps what backward needs anyway).
 * `x` itself is left to its owner.
 */
export function runStack<M>(x: Tensor, layers: Iterable<M>, apply: (layer: M, h: Tensor) => Tensor): Tensor {
  let h = x;
  for (const layer of layers) {
    const next = apply(layer, h);
    if (h !== x && next !== h) h.dispose();
    h = next;
  }
  return h;
}

/** An indexed list of modules; children are named "0", "1", … as in PyTorch. */
export class ModuleList<M extends Module = Module> extends Module {
  readonly items: M[];
  constructor(items: M[]) {
    super();
    this.items = items;
    items.forEach((m, i) => this.child(String(i), m));
  }
  get length(): number {
    return this.items.length;
  }
  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }
}
