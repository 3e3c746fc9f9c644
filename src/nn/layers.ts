/** The building blocks of the RAE models, with PyTorch / HF parameter names and initialisation. */
import * as ops from '../autograd/ops/index.js';
import { full, ones, randn, uniform, zeros } from '../tensor/creation.js';
import { scope } from '../tensor/scope.js';
import { fmt } from '../core/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import { Module } from './module.js';

/** y = x·Wᵀ + b; W: [out, in]. PyTorch default init: U(±1/√in) for weight and bias. */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: { bias?: boolean } = {},
  ) {
    super();
    const k = 1 / Math.sqrt(inFeatures);
    this.weight = this.param('weight', uniform([outFeatures, inFeatures], -k, k));
    this.bias = opts.bias === false ? null : this.param('bias', uniform([outFeatures], -k, k));
  }
  forward(x: Tensor, opts: ops.LinearOptions = {}): Tensor {
    return ops.linear(x, this.weight, this.bias, opts);
  }
}

export class LayerNorm extends Module {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  constructor(
    readonly dim: number,
    readonly eps = 1e-5,
    opts: { affine?: boolean } = {},
  ) {
    super();
    const affine = opts.affine ?? true;
    this.weight = affine ? this.param('weight', ones([dim])) : null;
    this.bias = affine ? this.param('bias', zeros([dim])) : null;
  }
  forward(x: Tensor): Tensor {
    return ops.layerNorm(x, [this.dim], this.weight, this.bias, this.eps);
  }
}

export class RMSNorm extends Module {
  readonly weight: Tensor;
  constructor(
    readonly dim: number,
    readonly eps = 1e-6,
  ) {
    super();
    this.weight = this.param('weight', ones([dim]));
  }
  forward(x: Tensor): Tensor {
    return ops.rmsNorm(x, [this.dim], this.weight, this.eps);
  }
}

/** fc2(GELU(fc1(x))) — the HF ViT / DINOv2 MLP (exact erf GELU) or timm's DiT MLP (tanh GELU). */
export class Mlp extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(
    dim: number,
    hidden: number,
    readonly activation: 'gelu' | 'gelu_tanh' = 'gelu',
  ) {
    super();
    this.fc1 = this.child('fc1', new Linear(dim, hidden));
    this.fc2 = this.child('fc2', new Linear(hidden, dim));
  }
  forward(x: Tensor): Tensor {
    return this.fc2.forward(this.fc1.forward(x, { activation: this.activation }));
  }
}

/** w3(SiLU(a) ⊙ b), [a, b] = chunk2(w12(x)); hidden = ⌊2/3 · 4h⌋ by default (RAE / LightningDiT). */
export class SwiGLU extends Module {
  readonly w12: Linear;
  readonly w3: Linear;
  readonly hidden: number;
  constructor(dim: number, hidden?: number) {
    super();
    this.hidden = hidden ?? Math.trunc((2 / 3) * Math.trunc(4 * dim));
    this.w12 = this.child('w12', new Linear(dim, 2 * this.hidden));
    this.w3 = this.child('w3', new Linear(this.hidden, dim));
  }
  forward(x: Tensor): Tensor {
    const ab = this.w12.forward(x);
    const a = ops.narrow(ab, -1, 0, this.hidden);
    const b = ops.narrow(ab, -1, this.hidden, this.hidden);
    return this.w3.forward(ops.siluMul(a, b));
  }
}

/** x ⊙ λ (DINOv2's `layer_scale{1,2}.lambda1`). */
export class LayerScale extends Module {
  readonly lambda1: Tensor;
  constructor(dim: number, init = 1.0) {
    super();
    this.lambda1 = this.param('lambda1', full([dim], init));
  }
  forward(x: Tensor): Tensor {
    return ops.mul(x, this.lambda1);
  }
}

/**
 * Conv2d with stride = kernel as patchify + matmul, weight [out, C, p, p] and bias [out] as the
 * checkpoint stores them. Output tokens [B, (H/p)(W/p), out], row-major over the patch grid.
 */
export class PatchEmbed extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly patch: number,
    init: 'default' | 'xavier' = 'default',
  ) {
    super();
    const fanIn = inChannels * patch * patch;
    if (init === 'xavier') {
      const a = Math.sqrt(6 / (fanIn + outChannels));
      this.weight = this.param('weight', uniform([outChannels, inChannels, patch, patch], -a, a));
      this.bias = this.param('bias', zeros([outChannels]));
    } else {
      const k = 1 / Math.sqrt(fanIn);
      this.weight = this.param('weight', uniform([outChannels, inChannels, patch, patch], -k, k));
      this.bias = this.param('bias', uniform([outChannels], -k, k));
    }
  }
  forward(x: Tensor): Tensor {
    if (x.rank !== 4 || x.shape[1] !== this.inChannels)
      throw new RangeError(`PatchEmbed: input must be [B, ${this.inChannels}, H, W], got ${fmt(x.shape)}`);
    const [B, C, H, W] = x.shape;
    const p = this.patch;
    if (H % p || W % p) throw new RangeError(`PatchEmbed: image ${H}×${W} is not divisible by the patch ${p}`);
    const h = H / p;
    const w = W / p;
    const tokens =
      p === 1
        ? ops.transpose(ops.reshape(x, [B, C, h * w]), 1, 2) // 1×1 conv: each pixel's channel vector
        : ops.reshape(ops.permute(ops.reshape(x, [B, C, h, p, w, p]), [0, 2, 4, 1, 3, 5]), [B, h * w, C * p * p]);
    return ops.linear(tokens, ops.reshape(this.weight, [this.outChannels, C * p * p]), this.bias);
  }
}

/** Splits [B, N, H·D] into heads [B, H, N, D] as a view (no copy). */
export function splitHeads(x: Tensor, heads: number): Tensor {
  const [B, N, C] = x.shape;
  return scope(() => ops.permute(ops.reshape(x, [B, N, heads, C / heads]), [0, 2, 1, 3]));
}

/** [B, H, N, D] → [B, N, H·D]. */
export function mergeHeads(x: Tensor): Tensor {
  const [B, H, N, D] = x.shape;
  return scope(() => ops.reshape(ops.permute(x, [0, 2, 1, 3]), [B, N, H * D]));
}

/** HF-style self-attention: separate query/key/value linears and an output dense layer. */
export class SeparateQKVAttention extends Module {
  readonly attention: QKV;
  readonly output: DenseOut;
  constructor(
    readonly dim: number,
    readonly heads: number,
  ) {
    super();
    this.attention = this.child('attention', new QKV(dim));
    this.output = this.child('output', new DenseOut(dim));
  }
  forward(x: Tensor): Tensor {
    const q = splitHeads(this.attention.query.forward(x), this.heads);
    const k = splitHeads(this.attention.key.forward(x), this.heads);
    const v = splitHeads(this.attention.value.forward(x), this.heads);
    return this.output.dense.forward(ops.scaledDotProductAttention(q, k, v, { layout: 'merged' }));
  }
}

class QKV extends Module {
  readonly query: Linear;
  readonly key: Linear;
  readonly value: Linear;
  constructor(dim: number) {
    super();
    this.query = this.child('query', new Linear(dim, dim));
    this.key = this.child('key', new Linear(dim, dim));
    this.value = this.child('value', new Linear(dim, dim));
  }
}

class DenseOut extends Module {
  readonly dense: Linear;
  constructor(dim: number) {
    super();
    this.dense = this.child('dense', new Linear(dim, dim));
  }
}

/** Fused-qkv attention with optional RoPE (LightningDiT / DDT blocks: `qkv`, `proj`). */
export class FusedQKVAttention extends Module {
  readonly qkv: Linear;
  readonly proj: Linear;
  constructor(
    readonly dim: number,
    readonly heads: number,
  ) {
    super();
    this.qkv = this.child('qkv', new Linear(dim, 3 * dim));
    this.proj = this.child('proj', new Linear(dim, dim));
  }
  forward(x: Tensor, rope?: { cos: Tensor; sin: Tensor }): Tensor {
    const [B, N] = x.shape;
    const hd = this.dim / this.heads;
    // [B, N, 3, H, hd] → three [B, H, N, hd] strided views: no copies before the attention kernel.
    const p = ops.permute(ops.reshape(this.qkv.forward(x), [B, N, 3, this.heads, hd]), [2, 0, 3, 1, 4]);
    const [q, k, v] = [0, 1, 2].map((i) => ops.squeeze(ops.narrow(p, 0, i, 1), 0));
    const [qr, kr] = rope ? [ops.rope(q, rope.cos, rope.sin), ops.rope(k, rope.cos, rope.sin)] : [q, k];
    return this.proj.forward(ops.scaledDotProductAttention(qr, kr, v, { layout: 'merged' }));
  }
}

/** Gaussian-Fourier time embedding: [sin(2πtW), cos(2πtW)] → Linear → SiLU → Linear. W frozen. */
export class GaussianFourierEmbedding extends Module {
  readonly W: Tensor;
  readonly mlp: TimeMlp;
  constructor(
    readonly hidden: number,
    readonly embeddingSize = 256,
  ) {
    super();
    this.W = this.param('W', randn([embeddingSize]), { frozen: true });
    this.mlp = this.child('mlp', new TimeMlp(2 * embeddingSize, hidden));
  }
  forward(t: Tensor): Tensor {
    const arg = ops.mul(ops.mul(ops.unsqueeze(t, 1), ops.unsqueeze(this.W, 0)), 2 * Math.PI);
    return this.mlp.forward(ops.cat([ops.unary('sin', arg), ops.unary('cos', arg)], 1));
  }
}

class TimeMlp extends Module {
  readonly l0: Linear;
  readonly l2: Linear;
  constructor(inF: number, hidden: number) {
    super();
    this.l0 = this.child('0', new Linear(inF, hidden));
    this.l2 = this.child('2', new Linear(hidden, hidden));
  }
  forward(x: Tensor): Tensor {
    return this.l2.forward(this.l0.forward(x, { activation: 'silu' }));
  }
}

/** Class-label table with a null class (index numClasses) used for label dropout / CFG. */
export class LabelEmbedder extends Module {
  readonly embeddingTable: Tensor;
  constructor(
    readonly numClasses: number,
    readonly hidden: number,
    readonly dropoutProb: number,
  ) {
    super();
    const rows = numClasses + (dropoutProb > 0 ? 1 : 0);
    this.embeddingTable = this.param('embedding_table.weight', randn([rows, hidden], { std: 0.02 }));
  }
  /** labels: i32 [B]. `forceDrop` (i32/f32 0/1 [B]) or, in training, random drop with dropoutProb. */
  forward(labels: Tensor, opts: { train?: boolean; dropMask?: Tensor } = {}): Tensor {
    let ids = labels;
    if (opts.dropMask || (opts.train && this.dropoutProb > 0)) {
      const mask = opts.dropMask ?? ops.compare('lt', uniform(labels.shape, 0, 1), this.dropoutProb);
      ids = ops.cast(ops.where(mask, this.numClasses, ops.cast(labels, 'f32')), 'i32');
    }
    return ops.embedding(ids, this.embeddingTable);
  }
}
