/**
 * nsfwjs's InceptionV3 run by the engine: the Keras layer graph of `loadNsfwjsInception()`
 * interpreted layer by layer (in the file's topological order) with the engine's NCHW ops, up to
 * `mixed10`, whose spatial mean is the 2048-d feature vector.
 *
 * Each Conv2D → BatchNormalization unit is folded into one convolution with a bias: the BN has no
 * γ (Keras `scale: false`), so W′[co] = W[co] · s[co] and b′ = β − μ·s with s = 1/√(σ² + ε),
 * computed in float64 and rounded once to f32 (conv weights HWIO → OIHW on the host); the relu
 * that follows each unit runs in the convolution's store (ops.conv2dRelu). Keras's
 * 'same' padding appears only with stride 1 here, i.e. (k − 1)/2 per side; its 'same' average
 * pools exclude the padding from the divisor (countIncludePad false).
 *
 * Preprocessing (the FID convention the golden features use): u8 RGB → /255 → bilinear resize to
 * 299×299 with half-pixel centres (align_corners false), per image, so sizes may differ.
 */
import { noGrad } from '../autograd/tape.js';
import * as ops from '../autograd/ops/index.js';
import { runtime } from '../gpu/runtime.js';
import { tensor, toArray } from '../tensor/creation.js';
import { scope } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import type { KerasLayer, NsfwjsInception } from './inception-weights.js';

export const INCEPTION_SIZE = 299;

interface ConvUnit {
  weight: Tensor;
  bias: Tensor;
  stride: [number, number];
  padding: [number, number];
  /** The unit's BN feeds a relu and nothing else: the relu runs in the convolution's store. */
  relu: boolean;
}

/** A u8 RGB image, HWC. */
export interface InceptionImage {
  data: Uint8Array;
  height: number;
  width: number;
}

export interface InceptionOutputs {
  /** [N, 2048]: mean over H, W of mixed10. */
  features: Tensor;
  /** [N, 256]: mean over H, W of mixed0 (to localise a mismatch). */
  mixed0Mean: Tensor;
}

function pairOf(v: unknown, what: string): [number, number] {
  if (!Array.isArray(v) || v.length !== 2 || !v.every((e) => Number.isInteger(e)))
    throw new Error(`inception: ${what} must be a pair of integers, got ${JSON.stringify(v)}`);
  return [v[0] as number, v[1] as number];
}

/** Padding of a Keras layer; 'same' only at stride 1 (the only case this network has). */
function kerasPadding(l: KerasLayer, kernel: [number, number], stride: [number, number]): [number, number] {
  if (l.config.padding === 'valid') return [0, 0];
  if (l.config.padding !== 'same') throw new Error(`inception: layer ${l.name} has padding ${JSON.stringify(l.config.padding)}`);
  if (stride[0] !== 1 || stride[1] !== 1 || kernel.some((k) => k % 2 === 0))
    throw new Error(`inception: layer ${l.name}: 'same' padding only with stride 1 and odd kernels is supported`);
  return [(kernel[0] - 1) / 2, (kernel[1] - 1) / 2];
}

export class EngineInception {
  private readonly units = new Map<string, ConvUnit>();
  /** The layers mixed10 depends on, in topological order. */
  private readonly plan: KerasLayer[];
  /** Activation layers computed by their conv unit (conv2dRelu); they pass their input on. */
  private readonly fusedActivations = new Set<string>();
  private disposed = false;

  constructor(readonly net: NsfwjsInception) {
    const byName = new Map(net.layers.map((l) => [l.name, l]));
    const needed = new Set<string>();
    const visit = (name: string) => {
      if (needed.has(name)) return;
      const l = byName.get(name);
      if (!l) throw new Error(`inception: layer ${name} is referenced but missing`);
      needed.add(name);
      l.inbound.forEach(visit);
    };
    visit('mixed10');
    this.plan = net.layers.filter((l) => needed.has(l.name));
    for (const l of this.plan) if (l.className === 'Conv2D') this.units.set(l.name, this.foldUnit(l));
    const consumers = new Map<string, KerasLayer[]>();
    for (const l of this.plan) for (const i of l.inbound) consumers.set(i, [...(consumers.get(i) ?? []), l]);
    for (const [name, u] of this.units) {
      const bn = consumers.get(name) ?? [];
      const act = bn.length === 1 ? (consumers.get(bn[0].name) ?? []) : [];
      if (act.length === 1 && act[0].className === 'Activation' && act[0].config.activation === 'relu') {
        u.relu = true;
        this.fusedActivations.add(act[0].name);
      }
    }
  }

  private weight(name: string): { shape: number[]; data: Float32Array } {
    const w = this.net.weights.get(name);
    if (!w) throw new Error(`inception: weight ${name} is missing`);
    return w;
  }

  /** Conv2D + its BatchNormalization (the layer consuming it) as one conv with bias. */
  private foldUnit(l: KerasLayer): ConvUnit {
    if (l.config.use_bias !== false) throw new Error(`inception: ${l.name} has a bias; this builder expects conv → BN units`);
    const dil = pairOf(l.config.dilation_rate, `${l.name} dilation_rate`);
    if (dil[0] !== 1 || dil[1] !== 1) throw new Error(`inception: ${l.name} is dilated`);
    const bn = this.plan.find((m) => m.inbound[0] === l.name);
    if (bn?.className !== 'BatchNormalization' || bn.config.scale !== false || bn.config.center !== true) {
      throw new Error(`inception: ${l.name} must feed a BatchNormalization with center and without scale`);
    }
    const k = this.weight(`${l.name}/kernel`);
    const [KH, KW, Ci, Co] = k.shape;
    const mean = this.weight(`${bn.name}/moving_mean`).data;
    const variance = this.weight(`${bn.name}/moving_variance`).data;
    const beta = this.weight(`${bn.name}/beta`).data;
    const eps = Number(bn.config.epsilon);
    const s = Float64Array.from(variance, (v) => 1 / Math.sqrt(v + eps));
    const w = new Float32Array(k.data.length);
    for (let kh = 0; kh < KH; kh++)
      for (let kw = 0; kw < KW; kw++)
        for (let ci = 0; ci < Ci; ci++)
          for (let co = 0; co < Co; co++) {
            w[((co * Ci + ci) * KH + kh) * KW + kw] = k.data[((kh * KW + kw) * Ci + ci) * Co + co] * s[co];
          }
    const b = Float32Array.from(beta, (bt, co) => bt - mean[co] * s[co]);
    const stride = pairOf(l.config.strides, `${l.name} strides`);
    return {
      weight: tensor(w, [Co, Ci, KH, KW]).keep(),
      bias: tensor(b, [Co]).keep(),
      stride,
      padding: kerasPadding(l, [KH, KW], stride),
      relu: false,
    };
  }

  /** [N, 3, 299, 299] in [0, 1] → mixed10 / mixed0 spatial means. */
  forward(x: Tensor): InceptionOutputs {
    if (this.disposed) throw new Error('inception: the network was disposed');
    if (x.rank !== 4 || x.shape[1] !== 3) throw new RangeError(`inception: input must be [N, 3, H, W], got [${x.shape.join(', ')}]`);
    return noGrad(() =>
      scope(() => {
        // Reference counts free each activation after its last consumer.
        const uses = new Map<string, number>();
        for (const l of this.plan) for (const i of l.inbound) uses.set(i, (uses.get(i) ?? 0) + 1);
        const acts = new Map<string, Tensor>();
        let mixed0Mean: Tensor | null = null;
        for (const l of this.plan) {
          const ins = l.inbound.map((n) => acts.get(n)!);
          let y: Tensor;
          switch (l.className) {
            case 'InputLayer':
              y = x;
              break;
            case 'Conv2D': {
              const u = this.units.get(l.name)!;
              const conv = u.relu ? ops.conv2dRelu : ops.conv2d;
              y = conv(ins[0], u.weight, u.bias, { stride: u.stride, padding: u.padding });
              break;
            }
            case 'BatchNormalization':
              y = ins[0]; // folded into the conv
              break;
            case 'Activation':
              if (this.fusedActivations.has(l.name)) {
                y = ins[0]; // computed by the conv unit
                break;
              }
              if (l.config.activation !== 'relu')
                throw new Error(`inception: activation ${JSON.stringify(l.config.activation)} of ${l.name}`);
              y = ops.unary('relu', ins[0]);
              break;
            case 'MaxPooling2D':
            case 'AveragePooling2D': {
              const k = pairOf(l.config.pool_size, `${l.name} pool_size`);
              const stride = pairOf(l.config.strides, `${l.name} strides`);
              const padding = kerasPadding(l, k, stride);
              y =
                l.className === 'MaxPooling2D'
                  ? ops.maxPool2d(ins[0], k, { stride, padding })
                  : ops.avgPool2d(ins[0], k, { stride, padding, countIncludePad: false });
              break;
            }
            case 'Concatenate':
              if (l.config.axis !== 3 && l.config.axis !== -1)
                throw new Error(`inception: ${l.name} concatenates along axis ${JSON.stringify(l.config.axis)}`);
              y = ops.cat(ins, 1);
              break;
            default:
              throw new Error(`inception: layer ${l.name} of class ${l.className} is not supported`);
          }
          acts.set(l.name, y);
          if (l.name === 'mixed0') mixed0Mean = ops.mean(y, [2, 3]);
          for (const n of l.inbound) {
            const left = uses.get(n)! - 1;
            uses.set(n, left);
            const t = acts.get(n)!;
            if (left === 0 && t !== x && t !== y) {
              acts.delete(n);
              t.dispose();
            }
          }
        }
        return { features: ops.mean(acts.get('mixed10')!, [2, 3]), mixed0Mean: mixed0Mean! };
      }),
    );
  }

  /**
   * Features of u8 RGB images (HWC, any sizes): /255, bilinear resize to 299×299 (half-pixel
   * centres), then forward. Returns [N, 2048] and [N, 256].
   */
  images(images: readonly InceptionImage[]): InceptionOutputs {
    return noGrad(() =>
      scope(() => {
        const batch = images.map((im, i) => {
          const { height: H, width: W } = im;
          if (im.data.length !== H * W * 3) throw new RangeError(`inception: image ${i} has ${im.data.length} bytes, expected ${H}×${W}×3`);
          const chw = new Float32Array(3 * H * W);
          for (let p = 0; p < H * W; p++) for (let c = 0; c < 3; c++) chw[c * H * W + p] = im.data[p * 3 + c] / 255;
          return ops.interpolate(tensor(chw, [1, 3, H, W]), [INCEPTION_SIZE, INCEPTION_SIZE], { mode: 'bilinear', alignCorners: false });
        });
        return this.forward(batch.length === 1 ? batch[0] : ops.cat(batch, 0));
      }),
    );
  }

  /**
   * Features of any number of images, `batchSize` at a time (memory stays that of one batch):
   * [images.length × 2048] row-major, read back to the host.
   */
  async features(images: readonly InceptionImage[], batchSize = 8): Promise<Float32Array> {
    if (!Number.isInteger(batchSize) || batchSize < 1)
      throw new RangeError(`inception: batchSize must be a positive integer, got ${batchSize}`);
    const out = new Float32Array(images.length * 2048);
    for (let at = 0; at < images.length; at += batchSize) {
      const o = this.images(images.slice(at, at + batchSize));
      try {
        out.set(await toArray(o.features), at * 2048);
      } finally {
        o.features.dispose();
        o.mixed0Mean.dispose();
      }
      await runtime().yieldIfBusy();
    }
    return out;
  }

  dispose(): void {
    for (const u of this.units.values()) {
      u.weight.dispose();
      u.bias.dispose();
    }
    this.units.clear();
    this.disposed = true;
  }
}
