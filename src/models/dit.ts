/**
 * DiT (LightningDiT) and DiT^DH (DiT body + wide DDT head), spec §5. Config fields are the
 * reference constructors' arguments; state-dict keys are the reference's own.
 */
import * as ops from '../autograd/ops/index.js';
import { tensor } from '../tensor/creation.js';
import type { Tensor } from '../tensor/tensor.js';
import { GaussianFourierEmbedding, LabelEmbedder, Linear, PatchEmbed } from '../nn/layers.js';
import { Module, ModuleList, runStack } from '../nn/module.js';
import { rope2dTables, sincos2dTable } from '../nn/tables.js';
import { DiTBlock, FinalLayer } from './dit-blocks.js';
import { classifierFreeGuidance } from './guidance.js';

export interface DiTConfig {
  input_size: number;
  patch_size?: number;
  in_channels: number;
  /** DiT: a number; DiT^DH: [body, head]. */
  hidden_size: number | number[];
  depth: number | number[];
  num_heads: number | number[];
  mlp_ratio?: number;
  num_classes: number;
  class_dropout_prob?: number;
  use_swiglu?: boolean;
  use_rmsnorm?: boolean;
  use_rope?: boolean;
  use_qknorm?: boolean;
}

function positive(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0)
    throw new RangeError(`DiT config: ${name} must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

function pair(v: number | number[] | undefined, name: string, dh: boolean): [number, number] {
  if (dh) {
    if (!Array.isArray(v) || v.length !== 2) throw new RangeError(`DiTDH config: ${name} must be [body, head], got ${JSON.stringify(v)}`);
    return [positive(v[0], `${name}[0]`), positive(v[1], `${name}[1]`)];
  }
  const x = Array.isArray(v) ? v[0] : v;
  return [positive(x, name), 0];
}

export interface BuildOptions {
  /** Build a body or head narrower than the token dimension anyway (ablations; paper §4.1). */
  allowNarrow?: boolean;
}

/**
 * Paper §4.1 (Theorem 1): a DiT (or a DiT^DH's DDT head) whose width is below the token dimension n = C·p² cannot fit
 * even one latent, since its per-token output has rank ≤ width. Refused unless asked for.
 */
export function checkWidth(kind: string, part: string, width: number, tokenDim: number, opts: BuildOptions): void {
  if (width < tokenDim && !opts.allowNarrow) {
    throw new RangeError(
      `${kind}: ${part} width ${width} is below the token dimension ${tokenDim} (in_channels × patch²); the RAE paper (§4.1) shows such a model cannot fit the latents. Widen it, or pass allowNarrow (--allow-narrow) for an ablation`,
    );
  }
}

class TokenEmbedder extends Module {
  readonly proj: PatchEmbed;
  constructor(inC: number, hidden: number, p: number) {
    super();
    this.proj = this.child('proj', new PatchEmbed(inC, hidden, p, 'xavier'));
  }
  forward(x: Tensor): Tensor {
    return this.proj.forward(x);
  }
}

class RopeTables extends Module {
  readonly cos: Tensor;
  readonly sin: Tensor;
  constructor(headDim: number, grid: number) {
    super();
    const t = rope2dTables(headDim, grid);
    this.cos = this.buffer('freqs_cos', tensor(t.cos, [grid * grid, headDim]));
    this.sin = this.buffer('freqs_sin', tensor(t.sin, [grid * grid, headDim]));
  }
}

/** Shared pieces of DiT and DiT^DH: embedders, body, conditioning. */
abstract class DiTBase extends Module {
  readonly grid: number;
  readonly patch: number;
  readonly inChannels: number;
  readonly hidden: number;
  readonly tEmbedder: GaussianFourierEmbedding;
  readonly yEmbedder: LabelEmbedder;
  readonly sEmbedder!: TokenEmbedder;
  readonly blocks: ModuleList<DiTBlock>;
  readonly posEmbed: Tensor;
  readonly encRope: RopeTables | null;

  constructor(
    readonly config: DiTConfig,
    dh: boolean,
    build: BuildOptions = {},
  ) {
    super();
    const c = config;
    this.patch = c.patch_size ?? 1;
    this.inChannels = positive(c.in_channels, 'in_channels');
    positive(c.input_size, 'input_size');
    if (c.input_size % this.patch)
      throw new RangeError(`DiT config: input_size ${c.input_size} is not divisible by patch_size ${this.patch}`);
    this.grid = c.input_size / this.patch;
    const [h1] = pair(c.hidden_size, 'hidden_size', dh);
    const [d1] = pair(c.depth, 'depth', dh);
    const [nh1] = pair(c.num_heads, 'num_heads', dh);
    if (h1 % nh1) throw new RangeError(`DiT config: hidden size ${h1} is not divisible by ${nh1} heads`);
    if (c.use_qknorm) throw new RangeError('DiT config: use_qknorm = true is not supported (the RAE configs use false)');
    this.hidden = h1;
    // DiT^DH may have a narrow body (the paper's DiT^DH-S: 384 wide on 768-dim tokens): its wide
    // DDT head is what must cover the token dimension, and is checked there.
    if (!dh) checkWidth('DiT', 'model', h1, this.inChannels * this.patch * this.patch, build);
    const opts = { mlpRatio: c.mlp_ratio ?? 4, useSwiglu: c.use_swiglu ?? true, useRmsnorm: c.use_rmsnorm ?? true };
    this.child(
      dh ? 's_embedder' : 'x_embedder',
      ((this as { sEmbedder: TokenEmbedder }).sEmbedder = new TokenEmbedder(this.inChannels, h1, this.patch)),
    );
    this.tEmbedder = this.child('t_embedder', new GaussianFourierEmbedding(h1));
    this.yEmbedder = this.child('y_embedder', new LabelEmbedder(positive(c.num_classes, 'num_classes'), h1, c.class_dropout_prob ?? 0.1));
    this.posEmbed = this.buffer('pos_embed', tensor(sincos2dTable(h1, this.grid), [1, this.grid * this.grid, h1]));
    this.blocks = this.child('blocks', new ModuleList(Array.from({ length: d1 }, () => new DiTBlock(h1, nh1, opts))));
    this.encRope = (c.use_rope ?? true) ? this.child(dh ? 'enc_feat_rope' : 'feat_rope', new RopeTables(h1 / nh1, this.grid)) : null;
  }

  /** Time and label embeddings [B, h]. `dropMask` forces the null class (CFG / label dropout). */
  protected embedConditions(t: Tensor, y: Tensor, dropMask?: Tensor): [Tensor, Tensor] {
    if (t.rank !== 1 || y.rank !== 1 || t.shape[0] !== y.shape[0])
      throw new RangeError(`DiT.forward: t and y must be [B], got [${t.shape}] and [${y.shape}]`);
    if (y.dtype !== 'i32') throw new TypeError(`DiT.forward: labels must be i32, got ${y.dtype}`);
    return [this.tEmbedder.forward(t), this.yEmbedder.forward(y, { train: this.training, dropMask })];
  }

  /** Called from forward, inside its scope. */
  protected runBody(x: Tensor, c: Tensor): Tensor {
    const [, C, H, W] = x.shape;
    if (x.rank !== 4 || C !== this.inChannels || H !== this.config.input_size || W !== this.config.input_size) {
      throw new RangeError(
        `DiT.forward: x must be [B, ${this.inChannels}, ${this.config.input_size}, ${this.config.input_size}], got [${x.shape}]`,
      );
    }
    const rope = this.encRope ? { cos: this.encRope.cos, sin: this.encRope.sin } : undefined;
    return runStack(ops.add(this.sEmbedder.forward(x), this.posEmbed), this.blocks, (blk, s) => blk.forward(s, c, rope));
  }

  abstract forward(x: Tensor, t: Tensor, y: Tensor, opts?: { dropMask?: Tensor }): Tensor;

  /**
   * Classifier-free guided velocity v_u + s·(v_c − v_u), conditional and null-class passes in one
   * doubled batch; guidance only for t inside `interval` (default: all t).
   */
  forwardWithCfg(x: Tensor, t: Tensor, y: Tensor, scale: number, interval?: [number, number]): Tensor {
    return classifierFreeGuidance((xx, tt, yy, mask) => this.forward(xx, tt, yy, { dropMask: mask }), x, t, y, { scale, interval });
  }

  /** [B, N, p²·C] tokens → [B, C, H, W] (channel-last inside each patch). */
  protected unpatchify(tok: Tensor): Tensor {
    return ops.unpatchify(tok, this.patch, this.inChannels, this.grid, this.grid);
  }
}

/** LightningDiT: tokens + APE → blocks conditioned on c = t_emb + y_emb → final layer. */
export class DiT extends DiTBase {
  readonly finalLayer: FinalLayer;
  constructor(config: DiTConfig, build: BuildOptions = {}) {
    super(config, false, build);
    this.finalLayer = this.child(
      'final_layer',
      new FinalLayer(this.hidden, this.patch * this.patch * this.inChannels, config.use_rmsnorm ?? true),
    );
  }
  static fromConfig(config: DiTConfig, build: BuildOptions = {}): DiT {
    return new DiT(config, build);
  }
  override forward(x: Tensor, t: Tensor, y: Tensor, opts: { dropMask?: Tensor } = {}): Tensor {
    const c = ops.add(...this.embedConditions(t, y, opts.dropMask));
    return this.unpatchify(this.finalLayer.forward(this.runBody(x, c), c));
  }
}

/** DiT^DH: DiT body, then a wide DDT head conditioned per token on SiLU(t_emb + body output). */
export class DiTDH extends DiTBase {
  readonly headHidden: number;
  readonly xEmbedder: TokenEmbedder;
  readonly sProjector: Linear | null;
  readonly headBlocks: DiTBlock[];
  readonly decRope: RopeTables | null;
  readonly finalLayer: FinalLayer;

  constructor(config: DiTConfig, build: BuildOptions = {}) {
    super(config, true, build);
    const [, h2] = pair(config.hidden_size, 'hidden_size', true);
    const [, d2] = pair(config.depth, 'depth', true);
    const [, nh2] = pair(config.num_heads, 'num_heads', true);
    if (h2 % nh2) throw new RangeError(`DiTDH config: head width ${h2} is not divisible by ${nh2} heads`);
    this.headHidden = h2;
    checkWidth('DiTDH', 'head', h2, this.inChannels * this.patch * this.patch, build);
    const opts = { mlpRatio: config.mlp_ratio ?? 4, useSwiglu: config.use_swiglu ?? true, useRmsnorm: config.use_rmsnorm ?? true };
    this.xEmbedder = this.child('x_embedder', new TokenEmbedder(this.inChannels, h2, this.patch));
    this.sProjector = h2 !== this.hidden ? this.child('s_projector', new Linear(this.hidden, h2)) : null;
    // Head blocks continue the body's numbering: blocks.{depth_body + i}.
    this.headBlocks = Array.from({ length: d2 }, (_, i) => this.blocks.items.length + i).map((idx) => {
      const b = new DiTBlock(h2, nh2, opts);
      (this.blocks as unknown as { child(n: string, m: Module): Module }).child(String(idx), b);
      return b;
    });
    this.decRope = (config.use_rope ?? true) ? this.child('dec_feat_rope', new RopeTables(h2 / nh2, this.grid)) : null;
    this.finalLayer = this.child('final_layer', new FinalLayer(h2, this.patch * this.patch * this.inChannels, config.use_rmsnorm ?? true));
  }

  static fromConfig(config: DiTConfig, build: BuildOptions = {}): DiTDH {
    return new DiTDH(config, build);
  }

  override forward(x: Tensor, t: Tensor, y: Tensor, opts: { dropMask?: Tensor } = {}): Tensor {
    const [te, ye] = this.embedConditions(t, y, opts.dropMask);
    const body = this.runBody(x, ops.unary('silu', ops.add(te, ye)));
    // The head is conditioned per token on SiLU(t_emb + body output).
    const sAct = ops.unary('silu', ops.add(ops.unsqueeze(te, 1), body));
    const s = this.sProjector ? this.sProjector.forward(sAct) : sAct;
    const rope = this.decRope ? { cos: this.decRope.cos, sin: this.decRope.sin } : undefined;
    const h = runStack(this.xEmbedder.forward(x), this.headBlocks, (blk, hh) => blk.forward(hh, s, rope));
    return this.unpatchify(this.finalLayer.forward(h, s));
  }
}
