/**
 * Masked autoencoder (He et al. 2022): a ViT encoder that sees a random 25% of the patches and a
 * light ViT decoder that predicts the pixels of the other 75% from the encoder's tokens plus mask
 * tokens. After pretraining only the encoder is kept; as an RAE encoder its latent is the patch
 * tokens after the final LayerNorm with the affine removed (spec §1.1, MAE-B row), CLS dropped.
 *
 * Patch embedding is a Linear on patchified pixels (what a stride-p convolution computes), so the
 * visible patches can be gathered as plain pixels before anything needs a gradient.
 */
import * as ops from '../autograd/ops/index.js';
import { noGrad } from '../autograd/tape.js';
import { FusedQKVAttention, LayerNorm, Linear, Mlp } from '../nn/layers.js';
import { Module, ModuleList, runStack } from '../nn/module.js';
import { randn, tensor } from '../tensor/creation.js';
import { scope } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';

/** The encoder's `config.json` (what `rae pretrain-encoder` writes next to the weights). */
export interface MaeConfig {
  model_type: 'mae-vit';
  image_size: number;
  patch_size: number;
  num_channels: number;
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  mlp_ratio: number;
  decoder_hidden_size: number;
  decoder_num_hidden_layers: number;
  decoder_num_attention_heads: number;
  mask_ratio: number;
  layer_norm_eps: number;
}

export function checkMaeConfig(c: MaeConfig): void {
  const ints = [
    'image_size',
    'patch_size',
    'num_channels',
    'hidden_size',
    'num_hidden_layers',
    'num_attention_heads',
    'decoder_hidden_size',
    'decoder_num_hidden_layers',
    'decoder_num_attention_heads',
  ] as const;
  for (const k of ints)
    if (!Number.isInteger(c[k]) || c[k] <= 0)
      throw new RangeError(`MAE config: ${k} must be a positive integer, got ${JSON.stringify(c[k])}`);
  if (c.image_size % c.patch_size)
    throw new RangeError(`MAE config: image_size ${c.image_size} is not a multiple of patch_size ${c.patch_size}`);
  for (const [w, h, what] of [
    [c.hidden_size, c.num_attention_heads, 'hidden_size'],
    [c.decoder_hidden_size, c.decoder_num_attention_heads, 'decoder_hidden_size'],
  ] as const) {
    if (w % h) throw new RangeError(`MAE config: ${what} ${w} is not divisible by ${h} heads`);
    if (w % 4) throw new RangeError(`MAE config: ${what} ${w} must be a multiple of 4 (2-D sin-cos position embedding)`);
  }
  if (!(c.mask_ratio >= 0 && c.mask_ratio < 1)) throw new RangeError(`MAE config: mask_ratio must be in [0, 1), got ${c.mask_ratio}`);
}

/**
 * Fixed 2-D sin-cos position table [grid², D] in row-major token order: the first D/2 channels
 * encode the column, the last D/2 the row, each as [sin(pos·ω_k), cos(pos·ω_k)] with
 * ω_k = 10000^(−k/(D/4)) (the MAE code's layout). The CLS token gets no position (zeros).
 */
export function sinCos2d(dim: number, grid: number): Float32Array {
  if (dim % 4) throw new RangeError(`sinCos2d: dim ${dim} must be a multiple of 4`);
  const q = dim / 4;
  const out = new Float32Array(grid * grid * dim);
  for (let i = 0; i < grid; i++)
    for (let j = 0; j < grid; j++) {
      const row = out.subarray((i * grid + j) * dim, (i * grid + j + 1) * dim);
      for (let k = 0; k < q; k++) {
        const w = 1 / 10000 ** (k / q);
        row[k] = Math.sin(j * w);
        row[q + k] = Math.cos(j * w);
        row[2 * q + k] = Math.sin(i * w);
        row[3 * q + k] = Math.cos(i * w);
      }
    }
  return out;
}

/** Number of visible patches out of n at a mask ratio (exactly round((1 − ratio)·n), at least 1). */
export const visibleCount = (n: number, maskRatio: number) => Math.max(1, Math.round((1 - maskRatio) * n));

export interface Masking {
  /** Per sample, the visible patch indices then the masked ones: a permutation of 0..N-1, [B·N]. */
  order: Int32Array;
  batch: number;
  tokens: number;
  visible: number;
}

/** Per-sample uniform random split (Fisher–Yates on a seeded host RNG returning [0, 1)). */
export function randomMasking(batch: number, tokens: number, maskRatio: number, rng: () => number): Masking {
  const visible = visibleCount(tokens, maskRatio);
  const order = new Int32Array(batch * tokens);
  for (let b = 0; b < batch; b++) {
    const p = order.subarray(b * tokens, (b + 1) * tokens);
    for (let i = 0; i < tokens; i++) p[i] = i;
    for (let i = tokens - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      const t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
  }
  return { order, batch, tokens, visible };
}

/** Flat row indices b·N + order[b, from..to) for a gather from [B·N, …]. */
function rows(m: Masking, from: number, to: number, offset: boolean): Int32Array {
  const n = to - from;
  const out = new Int32Array(m.batch * n);
  for (let b = 0; b < m.batch; b++)
    for (let i = 0; i < n; i++) out[b * n + i] = m.order[b * m.tokens + from + i] + (offset ? b * m.tokens : 0);
  return out;
}

/** x [B, N, F] → rows of each sample in the masking's order, [B, to − from, F]. */
function gatherTokens(x: Tensor, m: Masking, from: number, to: number): Tensor {
  const [B, N, F] = x.shape;
  const idx = tensor(rows(m, from, to, true), [B * (to - from)], { dtype: 'i32' });
  return ops.reshape(ops.indexSelect(ops.reshape(x, [B * N, F]), 0, idx), [B, to - from, F]);
}

/** table [N, F] → table rows in each sample's masking order, [B, to − from, F]. */
function gatherTable(table: Tensor, m: Masking, from: number, to: number): Tensor {
  const idx = tensor(rows(m, from, to, false), [m.batch * (to - from)], { dtype: 'i32' });
  return ops.reshape(ops.indexSelect(table, 0, idx), [m.batch, to - from, table.shape[1]]);
}

/** timm's ViT block: x + attn(LN(x)), then x + MLP(LN(x)) (exact GELU). */
export class MaeBlock extends Module {
  readonly norm1: LayerNorm;
  readonly attn: FusedQKVAttention;
  readonly norm2: LayerNorm;
  readonly mlp: Mlp;
  constructor(dim: number, heads: number, mlpRatio: number, eps: number) {
    super();
    this.norm1 = this.child('norm1', new LayerNorm(dim, eps));
    this.attn = this.child('attn', new FusedQKVAttention(dim, heads));
    this.norm2 = this.child('norm2', new LayerNorm(dim, eps));
    this.mlp = this.child('mlp', new Mlp(dim, Math.trunc(dim * mlpRatio)));
  }
  forward(x: Tensor): Tensor {
    const h = ops.add(x, this.attn.forward(this.norm1.forward(x)));
    return ops.add(h, this.mlp.forward(this.norm2.forward(h)));
  }
}

const blocks = (n: number, dim: number, heads: number, c: MaeConfig) =>
  new ModuleList(Array.from({ length: n }, () => new MaeBlock(dim, heads, c.mlp_ratio, c.layer_norm_eps)));

/** The encoder alone: what is saved after pretraining and frozen in RAE. */
export class MaeEncoder extends Module {
  readonly patchEmbed: Linear;
  readonly clsToken: Tensor;
  readonly pos: Tensor;
  readonly blocks: ModuleList<MaeBlock>;
  readonly norm: LayerNorm;
  readonly grid: number;

  constructor(readonly config: MaeConfig) {
    super();
    checkMaeConfig(config);
    const c = config;
    const D = c.hidden_size;
    this.grid = c.image_size / c.patch_size;
    this.patchEmbed = this.child('patch_embed', new Linear(c.patch_size * c.patch_size * c.num_channels, D));
    this.clsToken = this.param('cls_token', randn([1, 1, D], { std: 0.02 }));
    this.pos = this.buffer('pos_embed', tensor(sinCos2d(D, this.grid), [this.grid * this.grid, D]), { persistent: false });
    this.blocks = this.child('blocks', blocks(c.num_hidden_layers, D, c.num_attention_heads, c));
    this.norm = this.child('norm', new LayerNorm(D, c.layer_norm_eps));
  }

  /** Normalised pixels [B, C, S, S] → patches [B, N, p·p·C] (the RAE patch layout). */
  patches(pixels: Tensor): Tensor {
    const c = this.config;
    if (pixels.rank !== 4 || pixels.shape[1] !== c.num_channels || pixels.shape[2] !== c.image_size || pixels.shape[3] !== c.image_size)
      throw new RangeError(`MAE: pixels must be [B, ${c.num_channels}, ${c.image_size}, ${c.image_size}], got [${pixels.shape}]`);
    return ops.patchify(pixels, c.patch_size);
  }

  /** Patches [B, T, P] at positions pos [B, T, D] → hidden state [B, 1 + T, D] before the final LN. */
  private run(patches: Tensor, pos: Tensor): Tensor {
    const B = patches.shape[0];
    const D = this.config.hidden_size;
    const x = ops.add(this.patchEmbed.forward(patches), pos);
    return runStack(ops.cat([ops.expand(this.clsToken, [B, 1, D]), x], 1), this.blocks, (b, h) => b.forward(h));
  }

  /** Pretraining: the visible patches of a masking → [B, 1 + K, D] after the final LayerNorm. */
  forwardVisible(patches: Tensor, m: Masking): Tensor {
    return scope(() => {
      const vis = noGrad(() => gatherTokens(patches, m, 0, m.visible));
      const pos = gatherTable(this.pos, m, 0, m.visible);
      return this.norm.forward(this.run(vis, pos));
    });
  }

  /** All patches in natural order: hidden state [B, 1 + N, D] before the final LayerNorm. */
  hidden(pixels: Tensor): Tensor {
    return scope(() => {
      const p = this.patches(pixels);
      return this.run(p, ops.expand(ops.unsqueeze(this.pos, 0), [p.shape[0], ...this.pos.shape]));
    });
  }

  /** The RAE latent [B, N, D]: LayerNorm without affine (eps 1e-6), CLS dropped. */
  latent(pixels: Tensor): Tensor {
    return scope(() => {
      const h = this.hidden(pixels);
      const n = ops.layerNorm(h, [this.config.hidden_size], null, null, 1e-6);
      return ops.contiguous(ops.narrow(n, 1, 1, h.shape[1] - 1));
    });
  }
}

/** The light decoder: embed, add mask tokens, own position table, blocks, LN, patch pixels. */
export class MaeDecoder extends Module {
  readonly embed: Linear;
  readonly maskToken: Tensor;
  readonly pos: Tensor;
  readonly blocks: ModuleList<MaeBlock>;
  readonly norm: LayerNorm;
  readonly pred: Linear;
  constructor(c: MaeConfig) {
    super();
    const Dd = c.decoder_hidden_size;
    const grid = c.image_size / c.patch_size;
    this.embed = this.child('decoder_embed', new Linear(c.hidden_size, Dd));
    this.maskToken = this.param('mask_token', randn([1, 1, Dd], { std: 0.02 }));
    this.pos = this.buffer('decoder_pos_embed', tensor(sinCos2d(Dd, grid), [grid * grid, Dd]), { persistent: false });
    this.blocks = this.child('decoder_blocks', blocks(c.decoder_num_hidden_layers, Dd, c.decoder_num_attention_heads, c));
    this.norm = this.child('decoder_norm', new LayerNorm(Dd, c.layer_norm_eps));
    this.pred = this.child('decoder_pred', new Linear(Dd, c.patch_size * c.patch_size * c.num_channels));
  }

  /**
   * Encoder tokens [B, 1 + K, D] → predicted pixels of the masked patches [B, N − K, P], in the
   * masking's order. The tokens stay in shuffled order rather than being unshuffled: with no
   * order-dependent operation besides the position table (gathered in the same order), attention
   * is permutation-equivariant, so this computes exactly what unshuffling would.
   */
  forward(latent: Tensor, m: Masking): Tensor {
    const B = latent.shape[0];
    const Dd = this.maskToken.shape[2];
    const K = m.visible;
    const x = this.embed.forward(latent);
    const cls = ops.narrow(x, 1, 0, 1);
    const vis = ops.add(ops.narrow(x, 1, 1, K), gatherTable(this.pos, m, 0, K));
    const masked = ops.add(ops.expand(this.maskToken, [B, m.tokens - K, Dd]), gatherTable(this.pos, m, K, m.tokens));
    const h = runStack(ops.cat([cls, vis, masked], 1), this.blocks, (b, t) => b.forward(t));
    return this.pred.forward(ops.narrow(this.norm.forward(h), 1, 1 + K, m.tokens - K));
  }
}

/** Per-patch normalised targets: (t − mean) / √(var + 1e-6) over each patch's pixels (unbiased var, as MAE's code). */
export function normalizePatches(t: Tensor): Tensor {
  return scope(() => {
    const mean = ops.mean(t, -1, { keepdim: true });
    const v = ops.variance(t, -1, { keepdim: true });
    return ops.div(ops.sub(t, mean), ops.unary('sqrt', ops.add(v, 1e-6)));
  });
}

export class MaskedAutoencoder extends Module {
  readonly encoder: MaeEncoder;
  readonly decoder: MaeDecoder;
  constructor(readonly config: MaeConfig) {
    super();
    this.encoder = this.child('encoder', new MaeEncoder(config));
    this.decoder = this.child('decoder', new MaeDecoder(config));
  }

  static fromConfig(c: MaeConfig): MaskedAutoencoder {
    return new MaskedAutoencoder(c);
  }

  /** Normalised pixels and a masking → MSE on the masked patches against per-patch-normalised pixels. */
  forward(pixels: Tensor, m: Masking): Tensor {
    const patches = noGrad(() => this.encoder.patches(pixels));
    if (patches.shape[0] !== m.batch || patches.shape[1] !== m.tokens)
      throw new RangeError(`MAE: masking is for [${m.batch}, ${m.tokens}] patches, got [${patches.shape.slice(0, 2)}]`);
    const pred = this.decoder.forward(this.encoder.forwardVisible(patches, m), m);
    const target = noGrad(() => normalizePatches(gatherTokens(patches, m, m.visible, m.tokens)));
    const d = ops.sub(pred, target);
    return ops.mean(ops.mul(d, d));
  }
}
