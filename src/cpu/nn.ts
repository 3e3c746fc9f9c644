/**
 * Neural-network building blocks in float64: softmax family, cross-entropy, normalisation
 * layers and embedding lookup.
 */
import { type NDArray, ndSize, ndZeros, normalizeAxis } from './ndarray.js';
import { add, mul } from './elementwise.js';

/**
 * Runs `f` on every 1-D lane along `dim`: f(read(k), write(k, v), n). Lanes are addressed as
 * outer * n * inner + k * inner + inner index, i.e. the usual row-major split around `dim`.
 */
function forEachLane(
  x: NDArray,
  dim: number,
  f: (get: (k: number) => number, set: (k: number, v: number) => void, n: number) => void,
): NDArray {
  const d = normalizeAxis(dim, x.shape.length);
  const n = x.shape[d];
  const outer = ndSize(x.shape.slice(0, d));
  const inner = ndSize(x.shape.slice(d + 1));
  const out = ndZeros(x.shape);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      f(
        (k) => x.data[base + k * inner],
        (k, v) => {
          out.data[base + k * inner] = v;
        },
        n,
      );
    }
  }
  return out;
}

/** softmax along `dim`, shifted by the lane max so exp never overflows. */
export function softmax(x: NDArray, dim: number): NDArray {
  return forEachLane(x, dim, (get, set, n) => {
    let m = -Infinity;
    for (let k = 0; k < n; k++) m = Math.max(m, get(k));
    let s = 0;
    for (let k = 0; k < n; k++) s += Math.exp(get(k) - m);
    for (let k = 0; k < n; k++) set(k, Math.exp(get(k) - m) / s);
  });
}

/** log_softmax along `dim`: x - max - log(sum(exp(x - max))). */
export function logSoftmax(x: NDArray, dim: number): NDArray {
  return forEachLane(x, dim, (get, set, n) => {
    let m = -Infinity;
    for (let k = 0; k < n; k++) m = Math.max(m, get(k));
    let s = 0;
    for (let k = 0; k < n; k++) s += Math.exp(get(k) - m);
    const lse = m + Math.log(s);
    for (let k = 0; k < n; k++) set(k, get(k) - lse);
  });
}

/** Mean cross-entropy of logits [N, C] against integer class labels (length N). Returns shape []. */
export function crossEntropy(logits: NDArray, labels: ArrayLike<number>): NDArray {
  if (logits.shape.length !== 2) throw new Error(`crossEntropy: logits must be [N, C], got [${logits.shape.join(', ')}]`);
  const [n, c] = logits.shape;
  if (labels.length !== n) throw new Error(`crossEntropy: ${labels.length} labels for ${n} rows`);
  const logp = logSoftmax(logits, 1);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const y = labels[i];
    if (!Number.isInteger(y) || y < 0 || y >= c) throw new Error(`crossEntropy: label ${y} out of range [0, ${c})`);
    total -= logp.data[i * c + y];
  }
  return { data: Float64Array.of(total / n), shape: [] };
}

/** Checks that the trailing dims of x equal normalizedShape and returns the group size. */
function trailingGroup(x: NDArray, normalizedShape: readonly number[], what: string): number {
  const k = normalizedShape.length;
  const tail = x.shape.slice(x.shape.length - k);
  if (k > x.shape.length || tail.some((d, i) => d !== normalizedShape[i])) {
    throw new Error(`${what}: normalizedShape [${normalizedShape.join(', ')}] does not match input [${x.shape.join(', ')}]`);
  }
  return ndSize(normalizedShape);
}

function checkParam(p: NDArray | undefined, normalizedShape: readonly number[], what: string): void {
  if (p && (p.shape.length !== normalizedShape.length || p.shape.some((d, i) => d !== normalizedShape[i]))) {
    throw new Error(`${what}: parameter shape [${p.shape.join(', ')}] != normalizedShape [${normalizedShape.join(', ')}]`);
  }
}

/**
 * torch.nn.functional.layer_norm: normalise over the trailing `normalizedShape` dims using the
 * biased variance, then apply the optional elementwise affine weight and bias.
 */
export function layerNorm(x: NDArray, normalizedShape: readonly number[], weight?: NDArray, bias?: NDArray, eps = 1e-5): NDArray {
  const g = trailingGroup(x, normalizedShape, 'layerNorm');
  checkParam(weight, normalizedShape, 'layerNorm weight');
  checkParam(bias, normalizedShape, 'layerNorm bias');
  const out = ndZeros(x.shape);
  const groups = g === 0 ? 0 : x.data.length / g;
  for (let r = 0; r < groups; r++) {
    const base = r * g;
    let mu = 0;
    for (let i = 0; i < g; i++) mu += x.data[base + i];
    mu /= g;
    let v = 0;
    for (let i = 0; i < g; i++) v += (x.data[base + i] - mu) ** 2;
    v /= g;
    const inv = 1 / Math.sqrt(v + eps);
    for (let i = 0; i < g; i++) out.data[base + i] = (x.data[base + i] - mu) * inv;
  }
  let y = out;
  if (weight) y = mul(y, weight);
  if (bias) y = add(y, bias);
  return y;
}

/**
 * RMSNorm: x / sqrt(mean(x^2) + eps) * weight over the trailing `normalizedShape` dims.
 * (torch.nn.functional.rms_norm defaults eps to the dtype's machine epsilon; models pass it
 * explicitly, so here it is an explicit argument defaulting to 1e-6.)
 */
export function rmsNorm(x: NDArray, normalizedShape: readonly number[], weight?: NDArray, eps = 1e-6): NDArray {
  const g = trailingGroup(x, normalizedShape, 'rmsNorm');
  checkParam(weight, normalizedShape, 'rmsNorm weight');
  const out = ndZeros(x.shape);
  const groups = g === 0 ? 0 : x.data.length / g;
  for (let r = 0; r < groups; r++) {
    const base = r * g;
    let ms = 0;
    for (let i = 0; i < g; i++) ms += x.data[base + i] ** 2;
    ms /= g;
    const inv = 1 / Math.sqrt(ms + eps);
    for (let i = 0; i < g; i++) out.data[base + i] = x.data[base + i] * inv;
  }
  return weight ? mul(out, weight) : out;
}

/**
 * Embedding lookup: ids of any shape (an NDArray of integer values, or a flat list treated as
 * 1-D) into table [V, D] -> [...idsShape, D].
 */
export function embedding(ids: NDArray | ArrayLike<number>, table: NDArray): NDArray {
  const idArr: NDArray =
    'shape' in ids && 'data' in ids ? (ids as NDArray) : { data: Float64Array.from(ids as ArrayLike<number>), shape: [ids.length] };
  if (table.shape.length !== 2) throw new Error(`embedding: table must be [V, D], got [${table.shape.join(', ')}]`);
  const [v, d] = table.shape;
  const out = ndZeros([...idArr.shape, d]);
  for (let t = 0; t < idArr.data.length; t++) {
    const id = idArr.data[t];
    if (!Number.isInteger(id) || id < 0 || id >= v) throw new Error(`embedding: id ${id} out of range [0, ${v})`);
    out.data.set(table.data.subarray(id * d, (id + 1) * d), t * d);
  }
  return out;
}
