/**
 * The standard FID Inception (pytorch-fid's port of the TensorFlow 2015-12-05 graph) run by the
 * engine from a state dict checked by fid-inception-layout.ts. Differences from nsfwjs's network
 * (inception.ts): input scaled to [−1, 1] after the resize; batch norms have γ; every average
 * pool excludes padding (count_include_pad=False, as pytorch-fid's FIDInception blocks do); the
 * pool branch of the last block (Mixed_7c, FIDInceptionE_2) is a 3×3 **max** pool; features are
 * the global average of Mixed_7c (2048-d, "pool3").
 *
 * Each BasicConv2d (conv without bias → BN(eps 0.001) → ReLU) is folded into one conv with a
 * bias: W′ = W·s, b′ = β − μ·s with s = γ/√(σ² + ε), in float64, rounded once to f32.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as ops from '../autograd/ops/index.js';
import { noGrad } from '../autograd/tape.js';
import { tensor } from '../tensor/creation.js';
import { scope } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { FID_INCEPTION_REQUIRED } from './fid-inception-layout.js';
import { INCEPTION_SIZE, type InceptionImage } from './inception.js';
import type { NamedTensor } from './inception-weights.js';

const BN_EPS = 0.001;

interface Unit {
  weight: Tensor;
  bias: Tensor;
}

type Pad = [number, number];

export class FidInception {
  private readonly units = new Map<string, Unit>();
  readonly weightsSha256: string;
  private disposed = false;

  /** `weights` from loadFidInceptionSafetensors (its layout already checked); `file` for the hash. */
  constructor(weights: Map<string, NamedTensor>, file?: string) {
    const hash = createHash('sha256');
    if (file) hash.update(readFileSync(file));
    for (const t of FID_INCEPTION_REQUIRED) {
      if (!t.name.endsWith('.conv.weight')) continue;
      const name = t.name.slice(0, -'.conv.weight'.length);
      const get = (k: string) => {
        const w = weights.get(`${name}.${k}`);
        if (!w) throw new Error(`FID inception: tensor ${name}.${k} is missing`);
        return w.data;
      };
      const w = get('conv.weight');
      const [gamma, beta, mean, variance] = ['bn.weight', 'bn.bias', 'bn.running_mean', 'bn.running_var'].map(get);
      if (!file)
        for (const part of [w, gamma, beta, mean, variance]) hash.update(new Uint8Array(part.buffer, part.byteOffset, part.byteLength));
      const [co, ci, kh, kw] = t.shape;
      const per = ci * kh * kw;
      const folded = new Float32Array(w.length);
      const bias = new Float32Array(co);
      for (let o = 0; o < co; o++) {
        const s = gamma[o] / Math.sqrt(variance[o] + BN_EPS);
        for (let i = 0; i < per; i++) folded[o * per + i] = w[o * per + i] * s;
        bias[o] = beta[o] - mean[o] * s;
      }
      this.units.set(name, { weight: tensor(folded, [co, ci, kh, kw]).keep(), bias: tensor(bias, [co]).keep() });
    }
    this.weightsSha256 = hash.digest('hex');
  }

  private conv(name: string, x: Tensor, stride = 1, padding: Pad = [0, 0]): Tensor {
    const u = this.units.get(name);
    if (!u) throw new Error(`FID inception: no unit ${name}`);
    return ops.unary('relu', ops.conv2d(x, u.weight, u.bias, { stride: [stride, stride], padding }));
  }

  private avgPool(x: Tensor): Tensor {
    return ops.avgPool2d(x, [3, 3], { stride: [1, 1], padding: [1, 1], countIncludePad: false });
  }

  private blockA(p: string, x: Tensor): Tensor {
    const b1 = this.conv(`${p}.branch1x1`, x);
    const b5 = this.conv(`${p}.branch5x5_2`, this.conv(`${p}.branch5x5_1`, x), 1, [2, 2]);
    const d = this.conv(`${p}.branch3x3dbl_3`, this.conv(`${p}.branch3x3dbl_2`, this.conv(`${p}.branch3x3dbl_1`, x), 1, [1, 1]), 1, [1, 1]);
    const pool = this.conv(`${p}.branch_pool`, this.avgPool(x));
    return ops.cat([b1, b5, d, pool], 1);
  }

  private blockB(p: string, x: Tensor): Tensor {
    const b3 = this.conv(`${p}.branch3x3`, x, 2);
    const d = this.conv(`${p}.branch3x3dbl_3`, this.conv(`${p}.branch3x3dbl_2`, this.conv(`${p}.branch3x3dbl_1`, x), 1, [1, 1]), 2);
    return ops.cat([b3, d, ops.maxPool2d(x, [3, 3], { stride: [2, 2], padding: [0, 0] })], 1);
  }

  private blockC(p: string, x: Tensor): Tensor {
    const w: Pad = [0, 3];
    const h: Pad = [3, 0];
    const b1 = this.conv(`${p}.branch1x1`, x);
    let b7 = this.conv(`${p}.branch7x7_1`, x);
    b7 = this.conv(`${p}.branch7x7_3`, this.conv(`${p}.branch7x7_2`, b7, 1, w), 1, h);
    let d = this.conv(`${p}.branch7x7dbl_1`, x);
    d = this.conv(`${p}.branch7x7dbl_2`, d, 1, h);
    d = this.conv(`${p}.branch7x7dbl_3`, d, 1, w);
    d = this.conv(`${p}.branch7x7dbl_4`, d, 1, h);
    d = this.conv(`${p}.branch7x7dbl_5`, d, 1, w);
    const pool = this.conv(`${p}.branch_pool`, this.avgPool(x));
    return ops.cat([b1, b7, d, pool], 1);
  }

  private blockD(p: string, x: Tensor): Tensor {
    const b3 = this.conv(`${p}.branch3x3_2`, this.conv(`${p}.branch3x3_1`, x), 2);
    let b7 = this.conv(`${p}.branch7x7x3_1`, x);
    b7 = this.conv(`${p}.branch7x7x3_2`, b7, 1, [0, 3]);
    b7 = this.conv(`${p}.branch7x7x3_3`, b7, 1, [3, 0]);
    b7 = this.conv(`${p}.branch7x7x3_4`, b7, 2);
    return ops.cat([b3, b7, ops.maxPool2d(x, [3, 3], { stride: [2, 2], padding: [0, 0] })], 1);
  }

  private blockE(p: string, x: Tensor, maxPool: boolean): Tensor {
    const b1 = this.conv(`${p}.branch1x1`, x);
    const t = this.conv(`${p}.branch3x3_1`, x);
    const b3 = ops.cat([this.conv(`${p}.branch3x3_2a`, t, 1, [0, 1]), this.conv(`${p}.branch3x3_2b`, t, 1, [1, 0])], 1);
    const u = this.conv(`${p}.branch3x3dbl_2`, this.conv(`${p}.branch3x3dbl_1`, x), 1, [1, 1]);
    const d = ops.cat([this.conv(`${p}.branch3x3dbl_3a`, u, 1, [0, 1]), this.conv(`${p}.branch3x3dbl_3b`, u, 1, [1, 0])], 1);
    const pooled = maxPool ? ops.maxPool2d(x, [3, 3], { stride: [1, 1], padding: [1, 1] }) : this.avgPool(x);
    return ops.cat([b1, b3, d, this.conv(`${p}.branch_pool`, pooled)], 1);
  }

  /** [N, 3, 299, 299] in [0, 1] → [N, 2048] pool3 features. */
  forward(x01: Tensor): Tensor {
    if (this.disposed) throw new Error('FID inception: the network was disposed');
    if (x01.rank !== 4 || x01.shape[1] !== 3)
      throw new RangeError(`FID inception: input must be [N, 3, H, W], got [${x01.shape.join(', ')}]`);
    return noGrad(() =>
      scope(() => {
        // Each block's intermediates are freed when its inner scope closes.
        const step = (f: (t: Tensor) => Tensor) => (t: Tensor) => scope(() => f(t));
        const maxPool = (t: Tensor) => ops.maxPool2d(t, [3, 3], { stride: [2, 2], padding: [0, 0] });
        const stages: ((t: Tensor) => Tensor)[] = [
          (t) => ops.sub(ops.mul(t, 2), 1),
          (t) => maxPool(this.conv('Conv2d_2b_3x3', this.conv('Conv2d_2a_3x3', this.conv('Conv2d_1a_3x3', t, 2)), 1, [1, 1])),
          (t) => maxPool(this.conv('Conv2d_4a_3x3', this.conv('Conv2d_3b_1x1', t))),
          (t) => this.blockA('Mixed_5b', t),
          (t) => this.blockA('Mixed_5c', t),
          (t) => this.blockA('Mixed_5d', t),
          (t) => this.blockB('Mixed_6a', t),
          (t) => this.blockC('Mixed_6b', t),
          (t) => this.blockC('Mixed_6c', t),
          (t) => this.blockC('Mixed_6d', t),
          (t) => this.blockC('Mixed_6e', t),
          (t) => this.blockD('Mixed_7a', t),
          (t) => this.blockE('Mixed_7b', t, false),
          (t) => this.blockE('Mixed_7c', t, true),
          (t) => ops.mean(t, [2, 3]),
        ];
        let y = x01;
        for (const f of stages) {
          const next = step(f)(y);
          if (y !== x01) y.dispose();
          y = next;
        }
        return y;
      }),
    );
  }

  /** u8 RGB images (any sizes) → /255 → bilinear 299×299 (half-pixel centres) → forward. */
  images(images: readonly InceptionImage[]): Tensor {
    return noGrad(() =>
      scope(() => {
        const batch = images.map((im, i) => {
          const { height: H, width: W } = im;
          if (im.data.length !== H * W * 3)
            throw new RangeError(`FID inception: image ${i} has ${im.data.length} bytes, expected ${H}×${W}×3`);
          const chw = new Float32Array(3 * H * W);
          for (let p = 0; p < H * W; p++) for (let c = 0; c < 3; c++) chw[c * H * W + p] = im.data[p * 3 + c] / 255;
          return ops.interpolate(tensor(chw, [1, 3, H, W]), [INCEPTION_SIZE, INCEPTION_SIZE], { mode: 'bilinear', alignCorners: false });
        });
        return this.forward(batch.length === 1 ? batch[0] : ops.cat(batch, 0));
      }),
    );
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
