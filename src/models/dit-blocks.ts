/** LightningDiT / DDT blocks with adaLN-Zero (spec §5.2), shared by DiT and DiT^DH. */
import * as ops from '../autograd/ops/index.js';
import { zeros } from '../tensor/creation.js';
import { scope } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { Module } from '../nn/module.js';
import { FusedQKVAttention, LayerNorm, Linear, Mlp, RMSNorm, SwiGLU } from '../nn/layers.js';

export interface BlockOptions {
  mlpRatio: number;
  useSwiglu: boolean;
  useRmsnorm: boolean;
}

/** `adaLN_modulation` = Sequential(SiLU, Linear(h → k·h)); index 1 holds the Linear. */
export class AdaLNModulation extends Module {
  readonly linear: Linear;
  constructor(hidden: number, chunks: number) {
    super();
    this.linear = this.child('1', new Linear(hidden, chunks * hidden));
    // adaLN-Zero: every block starts as the identity.
    zeroParams(this.linear);
  }
  /** c: [B, h] or [B, N, h] → chunks, each broadcastable against [B, N, h]. */
  forward(c: Tensor, chunks: number): Tensor[] {
    const m = this.linear.forward(ops.unary('silu', c));
    const m3 = m.rank === 2 ? ops.unsqueeze(m, 1) : m;
    const h = m3.shape[2] / chunks;
    return Array.from({ length: chunks }, (_, i) => ops.narrow(m3, 2, i * h, h));
  }
}

/** x ⊙ (1 + scale) + shift (one fused kernel). */
export const modulate = ops.modulate;

function norm(hidden: number, rms: boolean): RMSNorm | LayerNorm {
  return rms ? new RMSNorm(hidden, 1e-6) : new LayerNorm(hidden, 1e-6, { affine: false });
}

export class DiTBlock extends Module {
  readonly norm1: RMSNorm | LayerNorm;
  readonly attn: FusedQKVAttention;
  readonly norm2: RMSNorm | LayerNorm;
  readonly mlp: SwiGLU | Mlp;
  readonly adaLN: AdaLNModulation;
  constructor(hidden: number, heads: number, opts: BlockOptions) {
    super();
    this.norm1 = this.child('norm1', norm(hidden, opts.useRmsnorm));
    this.attn = this.child('attn', new FusedQKVAttention(hidden, heads));
    this.norm2 = this.child('norm2', norm(hidden, opts.useRmsnorm));
    // Without SwiGLU, DiT uses timm's Mlp with the tanh-approximated GELU. SwiGLU keeps the
    // parameter count of that MLP: width int(2/3 · int(h · mlp_ratio)), as the reference computes it.
    const mlpHidden = Math.trunc(hidden * opts.mlpRatio);
    this.mlp = this.child(
      'mlp',
      opts.useSwiglu ? new SwiGLU(hidden, Math.trunc((2 / 3) * mlpHidden)) : new Mlp(hidden, mlpHidden, 'gelu_tanh'),
    );
    this.adaLN = this.child('adaLN_modulation', new AdaLNModulation(hidden, 6));
  }
  forward(x: Tensor, c: Tensor, rope?: { cos: Tensor; sin: Tensor }): Tensor {
    const [shift1, scale1, gate1, shift2, scale2, gate2] = this.adaLN.forward(c, 6);
    const a = this.attn.forward(modulate(this.norm1.forward(x), shift1, scale1), rope);
    const x1 = ops.gatedAdd(x, gate1, a);
    const f = this.mlp.forward(modulate(this.norm2.forward(x1), shift2, scale2));
    return ops.gatedAdd(x1, gate2, f);
  }
}

/** Final layer: linear(norm(x) ⊙ (1 + scale) + shift), (shift, scale) = chunk2(adaLN(c)); no gate. */
export class FinalLayer extends Module {
  readonly normFinal: RMSNorm | LayerNorm;
  readonly linear: Linear;
  readonly adaLN: AdaLNModulation;
  constructor(hidden: number, outChannels: number, rms: boolean) {
    super();
    this.normFinal = this.child('norm_final', norm(hidden, rms));
    this.linear = this.child('linear', new Linear(hidden, outChannels));
    this.adaLN = this.child('adaLN_modulation', new AdaLNModulation(hidden, 2));
    zeroParams(this.linear);
  }
  forward(x: Tensor, c: Tensor): Tensor {
    const [shift, scale] = this.adaLN.forward(c, 2);
    return this.linear.forward(modulate(this.normFinal.forward(x), shift, scale));
  }
}

/** Overwrites a module's parameters with zeros (adaLN-Zero init). */
export function zeroParams(m: Module): void {
  scope(() => m.loadStateDict(new Map([...m.stateDict()].map(([k, t]) => [k, zeros(t.shape)]))));
}
