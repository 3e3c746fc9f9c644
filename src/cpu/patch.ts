/**
 * Patch layouts used by the ViT encoder/decoder, and the strided ("patch embedding") conv.
 */
import { type NDArray, ndZeros } from './ndarray.js';

function check4d(x: NDArray, what: string): [number, number, number, number] {
  if (x.shape.length !== 4) throw new Error(`${what}: expected [B, C, H, W], got [${x.shape.join(', ')}]`);
  return x.shape as [number, number, number, number];
}

/**
 * [B, C, H, W] -> [B, (H/p)(W/p), p*p*C]. Tokens are in row-major patch-grid order; within a
 * token the feature index is (pi*p + pj)*C + c (channel last), the RAE decoder's layout
 * (einsum 'nchpwq->nhwpqc').
 */
export function patchify(x: NDArray, p: number): NDArray {
  const [b, c, h, w] = check4d(x, 'patchify');
  if (h % p !== 0 || w % p !== 0) throw new Error(`patchify: ${h}x${w} not divisible by patch ${p}`);
  const gh = h / p;
  const gw = w / p;
  const feat = p * p * c;
  const out = ndZeros([b, gh * gw, feat]);
  for (let n = 0; n < b; n++)
    for (let ch = 0; ch < c; ch++)
      for (let y = 0; y < h; y++)
        for (let xx = 0; xx < w; xx++) {
          const token = Math.floor(y / p) * gw + Math.floor(xx / p);
          const f = ((y % p) * p + (xx % p)) * c + ch;
          out.data[(n * gh * gw + token) * feat + f] = x.data[((n * c + ch) * h + y) * w + xx];
        }
  return out;
}

/**
 * Inverse of patchify: [B, gh*gw, p*p*C] -> [B, C, gh*p, gw*p]. The grid defaults to square
 * (gh = gw = sqrt(L)), as in the RAE decoder.
 */
export function unpatchify(x: NDArray, p: number, channels: number, grid?: [number, number]): NDArray {
  if (x.shape.length !== 3) throw new Error(`unpatchify: expected [B, L, p*p*C], got [${x.shape.join(', ')}]`);
  const [b, l, feat] = x.shape;
  if (feat !== p * p * channels) throw new Error(`unpatchify: feature dim ${feat} != ${p}*${p}*${channels}`);
  const side = Math.round(Math.sqrt(l));
  const [gh, gw] = grid ?? [side, side];
  if (gh * gw !== l) throw new Error(`unpatchify: grid ${gh}x${gw} does not hold ${l} tokens`);
  const h = gh * p;
  const w = gw * p;
  const out = ndZeros([b, channels, h, w]);
  for (let n = 0; n < b; n++)
    for (let ch = 0; ch < channels; ch++)
      for (let y = 0; y < h; y++)
        for (let xx = 0; xx < w; xx++) {
          const token = Math.floor(y / p) * gw + Math.floor(xx / p);
          const f = ((y % p) * p + (xx % p)) * channels + ch;
          out.data[((n * channels + ch) * h + y) * w + xx] = x.data[(n * l + token) * feat + f];
        }
  return out;
}

/**
 * torch.nn.functional.conv2d without padding or dilation: x [B, C, H, W], weight [O, C, kh, kw],
 * bias [O]; stride defaults to the kernel size (the ViT patch embedding).
 * Output [B, O, floor((H-kh)/sh)+1, floor((W-kw)/sw)+1].
 */
export function conv2dPatch(x: NDArray, weight: NDArray, bias?: NDArray, stride?: number | [number, number]): NDArray {
  const [b, c, h, w] = check4d(x, 'conv2dPatch');
  if (weight.shape.length !== 4 || weight.shape[1] !== c) {
    throw new Error(`conv2dPatch: weight [${weight.shape.join(', ')}] does not fit input channels ${c}`);
  }
  const [o, , kh, kw] = weight.shape;
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== o)) throw new Error(`conv2dPatch: bias must be [${o}]`);
  const [sh, sw] = stride === undefined ? [kh, kw] : typeof stride === 'number' ? [stride, stride] : stride;
  if (h < kh || w < kw) throw new Error('conv2dPatch: kernel larger than input');
  const oh = Math.floor((h - kh) / sh) + 1;
  const ow = Math.floor((w - kw) / sw) + 1;
  const out = ndZeros([b, o, oh, ow]);
  for (let n = 0; n < b; n++)
    for (let oc = 0; oc < o; oc++)
      for (let y = 0; y < oh; y++)
        for (let xx = 0; xx < ow; xx++) {
          let acc = bias ? bias.data[oc] : 0;
          for (let ch = 0; ch < c; ch++)
            for (let i = 0; i < kh; i++) {
              const xRow = ((n * c + ch) * h + y * sh + i) * w + xx * sw;
              const wRow = ((oc * c + ch) * kh + i) * kw;
              for (let j = 0; j < kw; j++) acc += x.data[xRow + j] * weight.data[wRow + j];
            }
          out.data[((n * o + oc) * oh + y) * ow + xx] = acc;
        }
  return out;
}
