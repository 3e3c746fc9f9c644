/**
 * The RAE ViT decoder (the reference `GeneralDecoder`, spec §3): tokens → Linear → [CLS] +
 * fixed sin-cos positions → pre-LN ViT layers → LayerNorm → per-token pixel patch.
 */
import * as ops from '../autograd/ops/index.js';
import { tensor, zeros } from '../tensor/creation.js';
import type { Tensor } from '../tensor/tensor.js';
import { LayerNorm, Linear, SeparateQKVAttention } from '../nn/layers.js';
import { Module, ModuleList, runStack } from '../nn/module.js';
import { sincos2dTable } from '../nn/tables.js';

/** Field names as in the reference's ViTMAEConfig, plus the number of patches. */
export interface RAEDecoderConfig {
  hidden_size: number;
  decoder_hidden_size: number;
  decoder_num_hidden_layers: number;
  decoder_num_attention_heads: number;
  decoder_intermediate_size: number;
  patch_size: number;
  num_channels?: number;
  layer_norm_eps?: number;
  num_patches: number;
}

class DenseHolder extends Module {
  readonly dense: Linear;
  constructor(i: number, o: number) {
    super();
    this.dense = this.child('dense', new Linear(i, o));
  }
}

class DecoderLayer extends Module {
  readonly layernormBefore: LayerNorm;
  readonly attention: SeparateQKVAttention;
  readonly layernormAfter: LayerNorm;
  readonly intermediate: DenseHolder;
  readonly output: DenseHolder;
  constructor(c: RAEDecoderConfig) {
    super();
    const D = c.decoder_hidden_size;
    const eps = c.layer_norm_eps ?? 1e-12;
    this.layernormBefore = this.child('layernorm_before', new LayerNorm(D, eps));
    this.attention = this.child('attention', new SeparateQKVAttention(D, c.decoder_num_attention_heads));
    this.layernormAfter = this.child('layernorm_after', new LayerNorm(D, eps));
    this.intermediate = this.child('intermediate', new DenseHolder(D, c.decoder_intermediate_size));
    this.output = this.child('output', new DenseHolder(c.decoder_intermediate_size, D));
  }
  forward(h: Tensor): Tensor {
    const h1 = ops.add(h, this.attention.forward(this.layernormBefore.forward(h)));
    const m = this.intermediate.dense.forward(this.layernormAfter.forward(h1), { activation: 'gelu' });
    return this.output.dense.forward(m, { residual: h1 });
  }
}

export class RAEDecoder extends Module {
  readonly decoderEmbed: Linear;
  readonly trainableClsToken: Tensor;
  readonly decoderPosEmbed: Tensor;
  readonly decoderLayers: ModuleList<DecoderLayer>;
  readonly decoderNorm: LayerNorm;
  readonly decoderPred: Linear;
  readonly grid: number;

  constructor(readonly config: RAEDecoderConfig) {
    super();
    const c = config;
    for (const k of [
      'hidden_size',
      'decoder_hidden_size',
      'decoder_num_hidden_layers',
      'decoder_num_attention_heads',
      'decoder_intermediate_size',
      'patch_size',
      'num_patches',
    ] as const) {
      if (!Number.isInteger(c[k]) || c[k] <= 0)
        throw new RangeError(`RAEDecoder config: ${k} must be a positive integer, got ${JSON.stringify(c[k])}`);
    }
    this.grid = Math.round(Math.sqrt(c.num_patches));
    if (this.grid * this.grid !== c.num_patches) throw new RangeError(`RAEDecoder config: num_patches ${c.num_patches} is not a square`);
    const D = c.decoder_hidden_size;
    const C = c.num_channels ?? 3;
    this.decoderEmbed = this.child('decoder_embed', new Linear(c.hidden_size, D));
    this.trainableClsToken = this.param('trainable_cls_token', zeros([1, 1, D]));
    this.decoderPosEmbed = this.buffer('decoder_pos_embed', tensor(sincos2dTable(D, this.grid, this.grid, 1), [1, c.num_patches + 1, D]));
    this.decoderLayers = this.child(
      'decoder_layers',
      new ModuleList(Array.from({ length: c.decoder_num_hidden_layers }, () => new DecoderLayer(c))),
    );
    this.decoderNorm = this.child('decoder_norm', new LayerNorm(D, c.layer_norm_eps ?? 1e-12));
    this.decoderPred = this.child('decoder_pred', new Linear(D, c.patch_size * c.patch_size * C));
  }

  static fromConfig(config: RAEDecoderConfig): RAEDecoder {
    return new RAEDecoder(config);
  }

  /** tokens [B, N, d] (un-normalised encoder tokens) → logits [B, N, p²·C]. */
  forward(tokens: Tensor): Tensor {
    const c = this.config;
    if (tokens.rank !== 3 || tokens.shape[1] !== c.num_patches || tokens.shape[2] !== c.hidden_size) {
      throw new RangeError(`RAEDecoder: tokens must be [B, ${c.num_patches}, ${c.hidden_size}], got [${tokens.shape}]`);
    }
    const B = tokens.shape[0];
    const D = c.decoder_hidden_size;
    const withCls = ops.cat([ops.expand(this.trainableClsToken, [B, 1, D]), this.decoderEmbed.forward(tokens)], 1);
    const h = runStack(ops.add(withCls, this.decoderPosEmbed), this.decoderLayers, (layer, hh) => layer.forward(hh));
    const pred = this.decoderPred.forward(this.decoderNorm.forward(h));
    // Drop the CLS position.
    return ops.contiguous(ops.narrow(pred, 1, 1, c.num_patches));
  }

  /** logits [B, N, p²·C] → image [B, C, H, W] (channel-last inside each patch). */
  unpatchify(logits: Tensor): Tensor {
    return ops.unpatchify(logits, this.config.patch_size, this.config.num_channels ?? 3, this.grid, this.grid);
  }
}
