/**
 * DINOv2 and DINOv2-with-registers, HF `transformers` key names and forward pass (spec §2).
 * Frozen in RAE, but every parameter is differentiable (the position table is resized by
 * resampling matrices, so its gradient is two matmuls).
 */
import * as ops from '../autograd/ops/index.js';
import { noGrad } from '../autograd/tape.js';
import { axisTaps } from '../kernels/resample.js';
import { tensor, zeros } from '../tensor/creation.js';
import { scope } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { LayerNorm, LayerScale, Mlp, PatchEmbed, SeparateQKVAttention } from '../nn/layers.js';
import { Module, ModuleList, runStack } from '../nn/module.js';

/** The fields of an HF `config.json` that the forward pass depends on. */
export interface Dinov2Config {
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  intermediate_size?: number;
  mlp_ratio?: number;
  patch_size: number;
  image_size: number;
  num_channels?: number;
  layer_norm_eps?: number;
  layerscale_value?: number;
  num_register_tokens?: number;
  hidden_act?: string;
  use_swiglu_ffn?: boolean;
  qkv_bias?: boolean;
  model_type?: string;
}

export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

function checkConfig(c: Dinov2Config): void {
  for (const k of ['hidden_size', 'num_hidden_layers', 'num_attention_heads', 'patch_size', 'image_size'] as const) {
    if (!Number.isInteger(c[k]) || c[k] <= 0)
      throw new RangeError(`Dinov2 config: ${k} must be a positive integer, got ${JSON.stringify(c[k])}`);
  }
  if (c.hidden_size % c.num_attention_heads)
    throw new RangeError(`Dinov2 config: hidden_size ${c.hidden_size} not divisible by ${c.num_attention_heads} heads`);
  if (c.use_swiglu_ffn) throw new RangeError('Dinov2 config: use_swiglu_ffn = true (the giant model) is not supported');
  if (c.hidden_act && c.hidden_act !== 'gelu')
    throw new RangeError(`Dinov2 config: hidden_act '${c.hidden_act}' is not supported (only exact 'gelu')`);
  if (c.qkv_bias === false) throw new RangeError('Dinov2 config: qkv_bias = false is not supported');
}

class Dinov2Embeddings extends Module {
  readonly clsToken: Tensor;
  readonly maskToken: Tensor;
  readonly registerTokens: Tensor | null;
  readonly positionEmbeddings: Tensor;
  readonly patchEmbeddings: PatchHolder;
  readonly grid0: number;
  private resizeCache = new Map<number, { rh: Tensor; rw: Tensor }>();

  constructor(
    private c: Dinov2Config,
    readonly antialias: boolean,
  ) {
    super();
    const D = c.hidden_size;
    this.grid0 = Math.floor(c.image_size / c.patch_size);
    this.clsToken = this.param('cls_token', zeros([1, 1, D]));
    this.maskToken = this.param('mask_token', zeros([1, D]));
    const R = c.num_register_tokens ?? 0;
    this.registerTokens = R > 0 ? this.param('register_tokens', zeros([1, R, D])) : null;
    this.positionEmbeddings = this.param('position_embeddings', zeros([1, 1 + this.grid0 * this.grid0, D]));
    this.patchEmbeddings = this.child('patch_embeddings', new PatchHolder(c.num_channels ?? 3, D, c.patch_size));
  }

  /** Dense [out, in] resampling matrix of one axis (PyTorch's taps, float32). */
  private resizeMatrices(grid: number): { rh: Tensor; rw: Tensor } {
    let m = this.resizeCache.get(grid);
    if (!m) {
      const taps = axisTaps(this.grid0, grid, 'bicubic', { antialias: this.antialias });
      const dense = new Float32Array(grid * this.grid0);
      for (let o = 0; o < grid; o++)
        for (let j = 0; j < taps.k; j++) dense[o * this.grid0 + taps.index[o * taps.k + j]] += taps.weight[o * taps.k + j];
      const rh = tensor(dense, [grid, this.grid0]).keep();
      const rw = ops.transpose(rh, 0, 1).keep();
      m = { rh, rw };
      this.resizeCache.set(grid, m);
    }
    return m;
  }

  /** Position table for a grid×grid patch layout: [1, 1 + grid², D]. */
  positions(grid: number): Tensor {
    const D = this.c.hidden_size;
    if (grid === this.grid0) return ops.reshape(this.positionEmbeddings, [1, 1 + grid * grid, D]);
    return scope(() => {
      const cls = ops.narrow(this.positionEmbeddings, 1, 0, 1);
      const patch = ops.narrow(this.positionEmbeddings, 1, 1, this.grid0 * this.grid0);
      const chw = ops.permute(ops.reshape(patch, [this.grid0, this.grid0, D]), [2, 0, 1]);
      const { rh, rw } = this.resizeMatrices(grid);
      const resized = ops.matmul(ops.matmul(rh, chw), rw); // [D, grid0, grid0] → [D, grid, grid]
      return ops.cat([cls, ops.reshape(ops.permute(resized, [1, 2, 0]), [1, grid * grid, D])], 1);
    });
  }

  forward(pixels: Tensor): Tensor {
    const [B, , H, W] = pixels.shape;
    const p = this.c.patch_size;
    if (H !== W) throw new RangeError(`Dinov2: only square inputs are supported, got ${H}×${W}`);
    const grid = Math.floor(H / p);
    const patches = this.patchEmbeddings.projection.forward(pixels);
    const D = this.c.hidden_size;
    const h = ops.add(ops.cat([ops.expand(this.clsToken, [B, 1, D]), patches], 1), this.positions(grid));
    if (!this.registerTokens) return h;
    // Registers go after CLS and carry no position embedding.
    const R = this.registerTokens.shape[1];
    return ops.cat([ops.narrow(h, 1, 0, 1), ops.expand(this.registerTokens, [B, R, D]), ops.narrow(h, 1, 1, grid * grid)], 1);
  }
}

class PatchHolder extends Module {
  readonly projection: PatchEmbed;
  constructor(c: number, d: number, p: number) {
    super();
    this.projection = this.child('projection', new PatchEmbed(c, d, p));
  }
}

class Dinov2Layer extends Module {
  readonly norm1: LayerNorm;
  readonly attention: SeparateQKVAttention;
  readonly layerScale1: LayerScale;
  readonly norm2: LayerNorm;
  readonly mlp: Mlp;
  readonly layerScale2: LayerScale;
  constructor(c: Dinov2Config) {
    super();
    const D = c.hidden_size;
    const eps = c.layer_norm_eps ?? 1e-6;
    // HF's Dinov2MLP sizes the hidden layer by mlp_ratio; `intermediate_size` is not used there.
    const hidden = Math.trunc(D * (c.mlp_ratio ?? 4));
    this.norm1 = this.child('norm1', new LayerNorm(D, eps));
    this.attention = this.child('attention', new SeparateQKVAttention(D, c.num_attention_heads));
    this.layerScale1 = this.child('layer_scale1', new LayerScale(D, c.layerscale_value ?? 1));
    this.norm2 = this.child('norm2', new LayerNorm(D, eps));
    this.mlp = this.child('mlp', new Mlp(D, hidden));
    this.layerScale2 = this.child('layer_scale2', new LayerScale(D, c.layerscale_value ?? 1));
  }
  forward(h: Tensor): Tensor {
    const h1 = ops.add(h, this.layerScale1.forward(this.attention.forward(this.norm1.forward(h))));
    return ops.add(h1, this.layerScale2.forward(this.mlp.forward(this.norm2.forward(h1))));
  }
}

class Dinov2Encoder extends Module {
  readonly layer: ModuleList<Dinov2Layer>;
  constructor(c: Dinov2Config) {
    super();
    this.layer = this.child('layer', new ModuleList(Array.from({ length: c.num_hidden_layers }, () => new Dinov2Layer(c))));
  }
}

/** `Dinov2Model` (no registers; position table resized with plain bicubic). */
export class Dinov2 extends Module {
  readonly embeddings: Dinov2Embeddings;
  readonly encoder: Dinov2Encoder;
  readonly layernorm: LayerNorm;
  readonly numPrefixTokens: number;

  constructor(
    readonly config: Dinov2Config,
    antialiasPositions = false,
  ) {
    super();
    checkConfig(config);
    this.embeddings = this.child('embeddings', new Dinov2Embeddings(config, antialiasPositions));
    this.encoder = this.child('encoder', new Dinov2Encoder(config));
    this.layernorm = this.child('layernorm', new LayerNorm(config.hidden_size, config.layer_norm_eps ?? 1e-6));
    this.numPrefixTokens = 1 + (config.num_register_tokens ?? 0);
  }

  static fromConfig(config: Dinov2Config): Dinov2 {
    return new Dinov2(config, false);
  }

  /** Hidden state after the last layer, before the final LayerNorm: [B, 1+R+N, D]. */
  hidden(pixels: Tensor): Tensor {
    const c = this.config;
    if (pixels.rank !== 4 || pixels.shape[1] !== (c.num_channels ?? 3))
      throw new RangeError(`Dinov2: pixels must be [B, ${c.num_channels ?? 3}, H, W], got [${pixels.shape}]`);
    if (pixels.shape[2] % c.patch_size || pixels.shape[3] % c.patch_size)
      throw new RangeError(`Dinov2: image size ${pixels.shape[2]}×${pixels.shape[3]} is not a multiple of the patch ${c.patch_size}`);
    return scope(() => runStack(this.embeddings.forward(pixels), this.encoder.layer, (layer, h) => layer.forward(h)));
  }

  /** HF `last_hidden_state`: [B, 1+R+N, D] after the final (affine) LayerNorm. */
  forward(pixels: Tensor): Tensor {
    return this.layernorm.forward(this.hidden(pixels));
  }

  /** The RAE latent [B, N, D]: LayerNorm without affine (eps 1e-6), CLS and registers dropped. */
  latent(pixels: Tensor): Tensor {
    return scope(() => {
      const h = this.hidden(pixels);
      const n = ops.layerNorm(h, [this.config.hidden_size], null, null, this.config.layer_norm_eps ?? 1e-6);
      return ops.contiguous(ops.narrow(n, 1, this.numPrefixTokens, h.shape[1] - this.numPrefixTokens));
    });
  }

  /**
   * [B, 3, H, W] in [0, 1] → the encoder's input: bicubic resize (a = −0.75, no antialias) to
   * `size` and ImageNet mean/std normalisation. Not differentiable (forward only resize).
   */
  encodeImage(img: Tensor, size = 224): Tensor {
    return noGrad(() =>
      scope(() => {
        const resized = img.shape[2] === size && img.shape[3] === size ? img : ops.interpolate(img, [size, size], { mode: 'bicubic' });
        const mean = tensor(Float32Array.from(IMAGENET_MEAN), [1, 3, 1, 1]);
        const std = tensor(Float32Array.from(IMAGENET_STD), [1, 3, 1, 1]);
        return ops.div(ops.sub(resized, mean), std);
      }),
    );
  }
}

/** `Dinov2WithRegistersModel`: register tokens after CLS; position table resized with antialias. */
export class Dinov2WithRegisters extends Dinov2 {
  constructor(config: Dinov2Config) {
    if (!config.num_register_tokens) throw new RangeError('Dinov2WithRegisters config: num_register_tokens must be > 0');
    super(config, true);
  }
  static override fromConfig(config: Dinov2Config): Dinov2WithRegisters {
    return new Dinov2WithRegisters(config);
  }
}
