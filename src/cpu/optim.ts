/**
 * Float64 optimizers with PyTorch semantics, the reference that the engine's optimizer classes
 * are tested against: AdamW (decoupled weight decay, bias correction), SGD (momentum, dampening,
 * Nesterov, L2 weight decay), global-norm gradient clipping (torch.nn.utils.clip_grad_norm_) and
 * a parameter EMA. Plain loops over Float64Array, updated in place.
 */

/** Multiplies every gradient by min(1, maxNorm / (‖g‖₂ + 1e-6)); returns the pre-clip ‖g‖². */
export function clipGradNorm64(grads: Float64Array[], maxNorm: number): number {
  let sumsq = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) sumsq += g[i] * g[i];
  const scale = Math.min(1, maxNorm / (Math.sqrt(sumsq) + 1e-6));
  for (const g of grads) for (let i = 0; i < g.length; i++) g[i] *= scale;
  return sumsq;
}

export interface AdamW64Options {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
}

export class AdamW64 {
  private readonly m: Float64Array[];
  private readonly v: Float64Array[];
  private t = 0;
  constructor(
    readonly params: Float64Array[],
    readonly opts: AdamW64Options,
  ) {
    this.m = params.map((p) => new Float64Array(p.length));
    this.v = params.map((p) => new Float64Array(p.length));
  }
  step(grads: Float64Array[]): void {
    this.t++;
    const { lr, betas, eps, weightDecay } = this.opts;
    const [b1, b2] = betas;
    const bc1 = 1 - b1 ** this.t;
    const bc2 = 1 - b2 ** this.t;
    this.params.forEach((p, k) => {
      const g = grads[k];
      const m = this.m[k];
      const v = this.v[k];
      for (let i = 0; i < p.length; i++) {
        p[i] *= 1 - lr * weightDecay;
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
        p[i] -= ((lr / bc1) * m[i]) / (Math.sqrt(v[i] / bc2) + eps);
      }
    });
  }
}

export interface SGD64Options {
  lr: number;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  weightDecay?: number;
}

export class SGD64 {
  private readonly buf: (Float64Array | null)[];
  constructor(
    readonly params: Float64Array[],
    readonly opts: SGD64Options,
  ) {
    this.buf = params.map(() => null);
  }
  step(grads: Float64Array[]): void {
    const { lr, momentum = 0, dampening = 0, nesterov = false, weightDecay = 0 } = this.opts;
    this.params.forEach((p, k) => {
      const d = Float64Array.from(grads[k], (g, i) => g + weightDecay * p[i]);
      if (momentum > 0) {
        let b = this.buf[k];
        if (!b)
          b = this.buf[k] = Float64Array.from(d); // the first step copies the gradient
        else for (let i = 0; i < b.length; i++) b[i] = momentum * b[i] + (1 - dampening) * d[i];
        for (let i = 0; i < d.length; i++) d[i] = nesterov ? d[i] + momentum * b[i] : b[i];
      }
      for (let i = 0; i < p.length; i++) p[i] -= lr * d[i];
    });
  }
}

/** ema ← d·ema + (1 − d)·θ. */
export function emaUpdate64(ema: Float64Array[], params: Float64Array[], decay: number): void {
  ema.forEach((e, k) => {
    for (let i = 0; i < e.length; i++) e[i] = decay * e[i] + (1 - decay) * params[k][i];
  });
}
