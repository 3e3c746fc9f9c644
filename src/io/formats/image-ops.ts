/**
 * Pixel operations shared by the main thread and the decode workers: decode (through sharp) and
 * the ADM centre crop (guided-diffusion's `center_crop_arr`) to a square of `size`, producing
 * uint8 RGB in CHW layout.
 *
 * `makeImageOps` must stay SELF-CONTAINED (no reference to imports or module-level names, no
 * dynamic import): the worker pool ships its source text (`makeImageOps.toString()`) into each
 * worker, so main-thread and worker decoding run the very same code whatever bundler built us.
 *
 * Resampling follows PIL's convention (the reference code resizes with PIL): separable passes,
 * horizontal then vertical, each rounded to uint8; a filter's support widens by the scale when
 * downsampling (antialiasing); pixel centres at i + 0.5. BOX halving while the short side is at
 * least twice the target, then BICUBIC (Keys, a = −0.5) so the short side equals the target,
 * then the centre crop. Coefficients are float64 where PIL uses 22-bit fixed point, so a pixel
 * may differ from PIL's by one level; we own this code (rather than sharp's resize) so that it
 * can be checked against a float64 reference and behaves identically in every worker.
 */

/** Undecoded image bytes (any format sharp reads: JPEG, PNG, WebP, GIF, TIFF, AVIF). */
export interface EncodedImage {
  kind: 'encoded';
  bytes: Uint8Array;
}
/** Raw uint8 pixels: interleaved HWC (`planar: false`) or planar CHW; 1 (grey) or 3 channels. */
export interface PixelImage {
  kind: 'pixels';
  bytes: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 3;
  planar: boolean;
}
export type RawImage = EncodedImage | PixelImage;

/** The subset of sharp's API we use (kept structural so the worker can pass its own instance). */
export type SharpLike = (
  input: Uint8Array,
  opts: { failOn: 'warning' },
) => {
  removeAlpha(): ReturnType<SharpLike>;
  toColourspace(c: string): ReturnType<SharpLike>;
  raw(opts: { depth: 'uchar' }): ReturnType<SharpLike>;
  toBuffer(opts: { resolveWithObject: true }): Promise<{ data: Uint8Array; info: { width: number; height: number; channels: number } }>;
};

export interface ImageOps {
  /** HWC uint8 image with `channels` 1 or 3 → ADM centre crop → CHW uint8 RGB [3, size, size]. */
  centreCrop(hwc: Uint8Array, width: number, height: number, channels: number, size: number): Uint8Array;
  /** PIL-style separable resize of an HWC uint8 image (exported for tests). */
  resize(
    hwc: Uint8Array,
    width: number,
    height: number,
    channels: number,
    outW: number,
    outH: number,
    filter: 'box' | 'bicubic',
  ): Uint8Array;
  /** Decodes (if needed) and centre-crops one raw image. */
  toCHW(sharp: SharpLike, img: RawImage, size: number): Promise<Uint8Array>;
}

export function makeImageOps(): ImageOps {
  // PIL's box is (−0.5, 0.5]: on odd halvings a tap exactly at the box's right edge counts.
  const box = (x: number) => (x > -0.5 && x <= 0.5 ? 1 : 0);
  const bicubic = (x: number) => {
    const a = -0.5;
    const t = Math.abs(x);
    if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
    if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
    return 0;
  };

  /** For each output index: first input index and normalised weights (PIL's precompute_coeffs). */
  const cache = new Map<string, { starts: Int32Array; weights: Float64Array[] }>();
  function coefficients(inSize: number, outSize: number, filter: 'box' | 'bicubic') {
    const key = `${inSize}:${outSize}:${filter}`;
    let c = cache.get(key);
    if (!c) {
      if (cache.size > 256) cache.clear();
      c = computeCoefficients(inSize, outSize, filter);
      cache.set(key, c);
    }
    return c;
  }

  function computeCoefficients(inSize: number, outSize: number, filter: 'box' | 'bicubic') {
    const kernel = filter === 'box' ? box : bicubic;
    const baseSupport = filter === 'box' ? 0.5 : 2;
    const scale = inSize / outSize;
    const filterScale = Math.max(scale, 1);
    const support = baseSupport * filterScale;
    const starts = new Int32Array(outSize);
    const weights: Float64Array[] = [];
    for (let o = 0; o < outSize; o++) {
      const centre = (o + 0.5) * scale;
      const lo = Math.max(Math.trunc(centre - support + 0.5), 0);
      const hi = Math.min(Math.trunc(centre + support + 0.5), inSize);
      const w = new Float64Array(hi - lo);
      let sum = 0;
      for (let j = 0; j < w.length; j++) {
        w[j] = kernel((lo + j - centre + 0.5) / filterScale);
        sum += w[j];
      }
      if (sum !== 0) for (let j = 0; j < w.length; j++) w[j] /= sum;
      starts[o] = lo;
      weights.push(w);
    }
    return { starts, weights };
  }

  const clampRound = (v: number) => (v <= 0 ? 0 : v >= 255 ? 255 : Math.floor(v + 0.5));

  function resize(src: Uint8Array, w: number, h: number, c: number, outW: number, outH: number, filter: 'box' | 'bicubic'): Uint8Array {
    let cur = src;
    let curW = w;
    if (outW !== w) {
      const { starts, weights } = coefficients(w, outW, filter);
      const dst = new Uint8Array(outW * h * c);
      for (let y = 0; y < h; y++) {
        const row = y * w * c;
        for (let o = 0; o < outW; o++) {
          const ws = weights[o];
          const base = row + starts[o] * c;
          for (let ch = 0; ch < c; ch++) {
            let acc = 0;
            for (let j = 0; j < ws.length; j++) acc += ws[j] * cur[base + j * c + ch];
            dst[(y * outW + o) * c + ch] = clampRound(acc);
          }
        }
      }
      cur = dst;
      curW = outW;
    }
    if (outH !== h) {
      const { starts, weights } = coefficients(h, outH, filter);
      const dst = new Uint8Array(curW * outH * c);
      const stride = curW * c;
      for (let o = 0; o < outH; o++) {
        const ws = weights[o];
        const base = starts[o] * stride;
        for (let x = 0; x < stride; x++) {
          let acc = 0;
          for (let j = 0; j < ws.length; j++) acc += ws[j] * cur[base + j * stride + x];
          dst[o * stride + x] = clampRound(acc);
        }
      }
      cur = dst;
    }
    return cur === src ? src.slice() : cur;
  }

  function centreCrop(hwc: Uint8Array, width: number, height: number, channels: number, size: number): Uint8Array {
    let img = hwc;
    let w = width;
    let h = height;
    while (Math.min(w, h) >= 2 * size) {
      const nw = Math.floor(w / 2);
      const nh = Math.floor(h / 2);
      img = resize(img, w, h, channels, nw, nh, 'box');
      w = nw;
      h = nh;
    }
    const scale = size / Math.min(w, h);
    // Python's round() (half to even) as in the reference; products here are rarely exact halves.
    const pyRound = (v: number) => {
      const f = Math.floor(v);
      const d = v - f;
      return d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
    };
    const nw = pyRound(w * scale);
    const nh = pyRound(h * scale);
    img = resize(img, w, h, channels, nw, nh, 'bicubic');
    const top = Math.floor((nh - size) / 2);
    const left = Math.floor((nw - size) / 2);
    const out = new Uint8Array(3 * size * size);
    const plane = size * size;
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const p = ((top + y) * nw + left + x) * channels;
        const q = y * size + x;
        if (channels === 1) {
          out[q] = out[plane + q] = out[2 * plane + q] = img[p];
        } else {
          out[q] = img[p];
          out[plane + q] = img[p + 1];
          out[2 * plane + q] = img[p + 2];
        }
      }
    }
    return out;
  }

  async function toCHW(sharp: SharpLike, raw: RawImage, size: number): Promise<Uint8Array> {
    if (raw.kind === 'encoded') {
      // failOn 'warning' turns libvips' "premature end of JPEG file" into an error: truncated
      // files must not pass as half-grey images. removeAlpha drops alpha like PIL's convert('RGB').
      const { data, info } = await sharp(raw.bytes, { failOn: 'warning' })
        .removeAlpha()
        .toColourspace('srgb')
        .raw({ depth: 'uchar' })
        .toBuffer({ resolveWithObject: true });
      if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 3`);
      return centreCrop(data, info.width, info.height, 3, size);
    }
    const { bytes, width, height, channels } = raw;
    if (bytes.length !== width * height * channels) throw new Error(`expected ${width * height * channels} bytes, got ${bytes.length}`);
    let hwc = bytes;
    if (raw.planar && channels === 3) {
      const plane = width * height;
      hwc = new Uint8Array(bytes.length);
      for (let i = 0; i < plane; i++) {
        hwc[3 * i] = bytes[i];
        hwc[3 * i + 1] = bytes[plane + i];
        hwc[3 * i + 2] = bytes[2 * plane + i];
      }
    }
    return centreCrop(hwc, width, height, channels, size);
  }

  return { centreCrop, resize, toCHW };
}
