/**
 * Optimizers over parameter tensors, updating in place through fused multi-tensor kernels.
 * Nothing here reads back from the GPU: gradient clipping computes its scale on the GPU and the
 * update kernels read it from there.
 */
import { adamwStep, clipScale, emaUpdate, sgdStep, sumOfSquares } from '../kernels/optim.js';
import { copyInto, writeHost } from '../tensor/copy.js';
import { contiguousCopy, zeros } from '../tensor/creation.js';
import { onReplay } from '../tensor/compile.js';
import { fmt } from '../core/shape.js';
import { empty, Tensor } from '../tensor/tensor.js';

function checkParams(params: Tensor[], op: string): Tensor[] {
  if (!Array.isArray(params) || params.length === 0) throw new RangeError(`${op}: expected a non-empty list of parameters`);
  params.forEach((p, i) => {
    if (!(p instanceof Tensor)) throw new TypeError(`${op}: parameter ${i} is not a Tensor`);
    if (p.dtype !== 'f32' || !p.isContiguous)
      throw new TypeError(`${op}: parameter ${p.name ?? i} must be a contiguous f32 tensor, got ${p.dtype} ${fmt(p.shape)}`);
  });
  return params;
}

/** Parameters whose gradient exists this step (others are skipped, as in PyTorch). */
function withGrads(params: Tensor[]): Tensor[] {
  return params.filter((p) => p.grad !== null);
}

export abstract class Optimizer {
  protected clipScaleBuf: Tensor | null = null;
  constructor(readonly params: Tensor[]) {}

  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /**
   * Scales all gradients so their global L2 norm is at most maxNorm, on the GPU; the scale is
   * applied inside the next step(). Returns a 1-element tensor with the pre-clip norm² (read it
   * only when you log).
   */
  clipGradNorm(maxNorm: number): Tensor {
    if (!(maxNorm > 0)) throw new RangeError(`clipGradNorm: maxNorm must be positive, got ${maxNorm}`);
    const grads = withGrads(this.params).map((p) => p.grad!);
    const sumsq = empty([1], 'f32');
    sumOfSquares(grads, sumsq);
    this.clipScaleBuf ??= empty([1], 'f32').keep();
    clipScale(sumsq, maxNorm, this.clipScaleBuf);
    this.pendingClip = true;
    return sumsq;
  }
  protected pendingClip = false;

  abstract step(): void;

  protected takeClip(): Tensor | undefined {
    if (!this.pendingClip) return undefined;
    this.pendingClip = false;
    return this.clipScaleBuf!;
  }

  /** Frees optimizer state. */
  dispose(): void {
    this.clipScaleBuf?.dispose();
  }
}

export interface AdamWOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

/** AdamW (decoupled weight decay, bias correction) — PyTorch semantics. */
export class AdamW extends Optimizer {
  lr: number;
  readonly betas: [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  stepCount = 0;
  private state = new Map<Tensor, { m: Tensor; v: Tensor }>();

  constructor(params: Tensor[], opts: AdamWOptions = {}) {
    super(checkParams(params, 'AdamW'));
    this.lr = opts.lr ?? 1e-3;
    this.betas = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 1e-2;
    if (!(this.lr >= 0) || this.betas.some((b) => !(b >= 0 && b < 1)) || !(this.eps >= 0) || !(this.weightDecay >= 0)) {
      throw new RangeError(
        `AdamW: invalid hyper-parameters lr=${this.lr} betas=${this.betas} eps=${this.eps} weightDecay=${this.weightDecay}`,
      );
    }
  }

  step(): void {
    const ps = withGrads(this.params);
    this.stepCount++;
    // A replay of a compiled step counts the step and reads lr (set before the replay) anew.
    onReplay(() => this.stepCount++);
    const groups = ps.map((p) => {
      let s = this.state.get(p);
      if (!s) {
        s = { m: zeros(p.shape).keep(), v: zeros(p.shape).keep() };
        this.state.set(p, s);
      }
      return { param: p, grad: contiguousGrad(p), m: s.m, v: s.v };
    });
    adamwStep(groups, {
      lr: this.lr,
      beta1: this.betas[0],
      beta2: this.betas[1],
      eps: this.eps,
      weightDecay: this.weightDecay,
      step: this.stepCount,
      gradScaleBuffer: this.takeClip(),
      live: () => ({ lr: this.lr, step: this.stepCount }),
    });
  }

  /**
   * First and second moments by parameter index (only parameters that have had a step), for
   * checkpoints. The tensors are the optimizer's own: read, do not dispose.
   */
  moments(): Map<number, { m: Tensor; v: Tensor }> {
    const out = new Map<number, { m: Tensor; v: Tensor }>();
    this.params.forEach((p, i) => {
      const s = this.state.get(p);
      if (s) out.set(i, s);
    });
    return out;
  }

  /** Restores moments saved by moments() (host data, by parameter index) and the step count. */
  loadMoments(moments: Map<number, { m: Float32Array; v: Float32Array }>, stepCount: number): void {
    for (const [i, { m, v }] of moments) {
      const p = this.params[i];
      if (!p || m.length !== p.size || v.length !== p.size)
        throw new RangeError(`AdamW.loadMoments: moments for parameter ${i} do not match its size ${p?.size}`);
      let s = this.state.get(p);
      if (!s) {
        s = { m: zeros(p.shape).keep(), v: zeros(p.shape).keep() };
        this.state.set(p, s);
      }
      writeHost(s.m, m);
      writeHost(s.v, v);
    }
    this.stepCount = stepCount;
  }

  /** Number of floats of optimizer state (m and v). */
  stateSize(): number {
    let n = 0;
    for (const s of this.state.values()) n += s.m.size + s.v.size;
    return n;
  }

  override dispose(): void {
    super.dispose();
    for (const s of this.state.values()) {
      s.m.dispose();
      s.v.dispose();
    }
    this.state.clear();
  }
}

function contiguousGrad(p: Tensor): Tensor {
  const g = p.grad!;
  if (g.isContiguous && g.offset === 0) return g;
  const c = contiguousCopy(g).keep();
  g.dispose();
  p.grad = c;
  return c;
}

export interface SGDOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  weightDecay?: number;
}

/** SGD with optional momentum / Nesterov — PyTorch semantics. */
export class SGD extends Optimizer {
  readonly opts: Required<SGDOptions>;
  private buffers = new Map<Tensor, Tensor>();
  private first = true;
  constructor(params: Tensor[], opts: SGDOptions) {
    super(checkParams(params, 'SGD'));
    this.opts = { momentum: 0, dampening: 0, nesterov: false, weightDecay: 0, ...opts };
    if (this.opts.nesterov && (this.opts.momentum <= 0 || this.opts.dampening !== 0))
      throw new RangeError('SGD: Nesterov momentum requires momentum > 0 and dampening 0');
  }
  get lr(): number {
    return this.opts.lr;
  }
  set lr(v: number) {
    this.opts.lr = v;
  }
  step(): void {
    const ps = withGrads(this.params);
    const groups = ps.map((p) => {
      let momentum: Tensor | undefined;
      if (this.opts.momentum > 0) {
        momentum = this.buffers.get(p);
        if (!momentum) this.buffers.set(p, (momentum = zeros(p.shape).keep()));
      }
      return { param: p, grad: contiguousGrad(p), momentum };
    });
    sgdStep(groups, { ...this.opts, firstStep: this.first, gradScaleBuffer: this.takeClip() });
    this.first = false;
  }
  override dispose(): void {
    super.dispose();
    for (const b of this.buffers.values()) b.dispose();
  }
}

/** Exponential moving average of parameters: ema ← d·ema + (1 − d)·θ, one fused update. */
export class EMA {
  readonly shadow: Tensor[];
  constructor(
    readonly params: Tensor[],
    readonly decay: number,
  ) {
    if (!(decay >= 0 && decay <= 1)) throw new RangeError(`EMA: decay must be in [0, 1], got ${decay}`);
    this.shadow = checkParams(params, 'EMA').map((p) => contiguousCopy(p).keep());
  }
  update(): void {
    emaUpdate(
      this.params.map((p, i) => ({ ema: this.shadow[i], param: p })),
      this.decay,
    );
  }
  /** Overwrites the parameters with the averaged weights (e.g. before sampling). */
  copyTo(): void {
    this.params.forEach((p, i) => copyInto(p, this.shadow[i]));
  }

  dispose(): void {
    for (const s of this.shadow) s.dispose();
  }
}
