/** Creating tensors from host data, constants, ranges and the seeded generator; reading them back. */
import { runtime } from '../gpu/runtime.js';
import { mapInto } from '../kernels/elementwise.js';
import { randomFill, type RandomKind } from '../kernels/random.js';
import { assertDType, type DType } from '../core/dtype.js';
import { contiguousStrides, fmt, sizeOf, validateShape, type Shape } from '../core/shape.js';
import { empty, type Tensor, viewOf } from './tensor.js';

export interface DTypeOption {
  dtype?: DType;
  requiresGrad?: boolean;
}

type Nested = number | boolean | Nested[];

function inferShape(data: Nested, op: string): number[] {
  const shape: number[] = [];
  let cur: Nested = data;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    cur = cur[0] as Nested;
  }
  const flat = Array.isArray(data) ? (data as unknown[]).flat(Infinity as 1) : [data];
  if (flat.length !== sizeOf(shape))
    throw new RangeError(`${op}: ragged nested array; inferred shape ${fmt(shape)} needs ${sizeOf(shape)} values, got ${flat.length}`);
  return shape;
}

function toHost(values: ArrayLike<number>, dtype: DType, op: string): Float32Array | Int32Array | Uint32Array {
  if (dtype === 'i32' || dtype === 'u32') {
    const out = dtype === 'i32' ? new Int32Array(values.length) : new Uint32Array(values.length);
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (!Number.isInteger(v)) throw new TypeError(`${op}: value ${v} at index ${i} is not an integer, but dtype is ${dtype}`);
      out[i] = v;
    }
    return out;
  }
  return values instanceof Float32Array ? values : Float32Array.from(values);
}

/**
 * `tensor([[1, 2], [3, 4]])`, `tensor(float32Array, [2, 2])`, `tensor(3.5)`.
 * f16 tensors are uploaded as f32 and cast on the GPU.
 */
export function tensor(data: Nested | ArrayLike<number>, shape?: Shape, opts: DTypeOption = {}): Tensor {
  const op = 'tensor';
  const dtype = assertDType(opts.dtype ?? (data instanceof Int32Array ? 'i32' : data instanceof Uint32Array ? 'u32' : 'f32'), op);
  let flat: ArrayLike<number>;
  let sh: number[];
  if (ArrayBuffer.isView(data)) {
    flat = data as unknown as ArrayLike<number>;
    sh = shape ? validateShape(shape, op) : [flat.length];
  } else if (Array.isArray(data) || typeof data === 'number' || typeof data === 'boolean') {
    const inferred = inferShape(data as Nested, op);
    flat = (Array.isArray(data) ? (data as unknown[]).flat(Infinity as 1) : [data]).map(Number);
    sh = shape ? validateShape(shape, op) : inferred;
  } else {
    throw new TypeError(`${op}: data must be a number, a (nested) array or a typed array`);
  }
  if (flat.length !== sizeOf(sh)) {
    throw new RangeError(`${op}: data has ${flat.length} values but shape ${fmt(sh)} needs ${sizeOf(sh)}`);
  }
  const t = fromHost(toHost(flat, dtype === 'f16' ? 'f32' : dtype, op), sh, dtype);
  if (opts.requiresGrad) t.requiresGrad = true;
  return t;
}

function fromHost(host: Float32Array | Int32Array | Uint32Array, shape: number[], dtype: DType): Tensor {
  if (dtype === 'f16') {
    requireF16('tensor');
    const staged = fromHost(host, shape, 'f32');
    const out = empty(shape, 'f16');
    mapInto({ name: 'cast', expr: 'in0', compute: 'f32' }, [staged], out);
    staged.dispose();
    return out;
  }
  const t = empty(shape, dtype);
  if (host.length) runtime().upload(t.buffer, host);
  return t;
}

export function requireF16(op: string): void {
  if (!runtime().hasF16) throw new TypeError(`${op}: dtype f16 needs the adapter feature 'shader-f16', which this adapter lacks`);
}

export function full(shape: Shape, value: number, opts: DTypeOption = {}): Tensor {
  const sh = validateShape(shape, 'full');
  const dtype = assertDType(opts.dtype ?? 'f32', 'full');
  if (dtype === 'f16') requireF16('full');
  const t = empty(sh, dtype);
  // The value travels as an f32 uniform: exact for integers up to 2^24.
  mapInto({ name: 'fill', expr: 's0', compute: 'f32', scalars: [value] }, [], t);
  if (opts.requiresGrad) t.requiresGrad = true;
  return t;
}

export const zeros = (shape: Shape, opts: DTypeOption = {}): Tensor => full(shape, 0, opts);
export const ones = (shape: Shape, opts: DTypeOption = {}): Tensor => full(shape, 1, opts);

/** `arange(end)`, `arange(start, end, step)`. */
export function arange(start: number, end?: number, step = 1, opts: DTypeOption = {}): Tensor {
  if (end === undefined) [start, end] = [0, start];
  if (step === 0 || !Number.isFinite(step)) throw new RangeError(`arange: step must be a non-zero finite number, got ${step}`);
  const n = Math.max(0, Math.ceil((end - start) / step));
  const allInt = [start, end, step].every(Number.isInteger);
  const dtype = assertDType(opts.dtype ?? (allInt ? 'i32' : 'f32'), 'arange');
  const t = empty([n], dtype);
  const expr = dtype === 'f32' || dtype === 'f16' ? 's0 + f32(i) * s1' : `${dtype}(i32(s0) + i32(i) * i32(s1))`;
  mapInto({ name: 'arange', expr, compute: dtype === 'f16' ? 'f32' : dtype === 'f32' ? 'f32' : dtype, scalars: [start, step] }, [], t);
  return t;
}

export interface RandomOptions extends DTypeOption {
  /** Same seed → same numbers. Without one, the global generator (manualSeed) advances. */
  seed?: number;
  /**
   * With a seed: an independent sub-stream of it (default 0). Draws that need several
   * independent random inputs from one seed use streams 0, 1, … rather than seeds s, s + 1, …,
   * which would overlap with the draws of the next seed.
   */
  stream?: number;
}

let globalSeed = 0x5eed;
let globalStream = 1;

/** Seeds the global generator used by random ops called without a seed. */
export function manualSeed(seed: number): void {
  globalSeed = seed >>> 0;
  globalStream = 1;
}

/** The global generator's position, for checkpoints: restoring it replays the same draws. */
export interface GeneratorState {
  seed: number;
  stream: number;
}
export function getGeneratorState(): GeneratorState {
  return { seed: globalSeed, stream: globalStream };
}
export function setGeneratorState(s: GeneratorState): void {
  if (!Number.isInteger(s.seed) || !Number.isInteger(s.stream) || s.stream < 0)
    throw new RangeError(`setGeneratorState: need integer seed and stream, got ${JSON.stringify(s)}`);
  globalSeed = s.seed >>> 0;
  globalStream = s.stream;
}

function draw(kind: RandomKind, shape: Shape, a: number, b: number, opts: RandomOptions, op: string, defaultDtype: DType = 'f32'): Tensor {
  const sh = validateShape(shape, op);
  const dtype = assertDType(opts.dtype ?? defaultDtype, op);
  if (dtype === 'f16') requireF16(op);
  if (kind !== 'randint' && dtype !== 'f32' && dtype !== 'f16') throw new TypeError(`${op}: dtype must be f32 or f16, got ${dtype}`);
  const t = empty(sh, dtype);
  let seedLo: number, seedHi: number, stream: number;
  let dynamic: { seedLo: () => number; stream: () => number } | undefined;
  if (opts.seed !== undefined) {
    if (!Number.isInteger(opts.seed)) throw new TypeError(`${op}: seed must be an integer, got ${opts.seed}`);
    seedLo = opts.seed >>> 0;
    seedHi = Math.floor(opts.seed / 2 ** 32) >>> 0;
    stream = opts.stream ?? 0;
    if (!Number.isInteger(stream) || stream < 0 || stream >= 2 ** 32)
      throw new RangeError(`${op}: stream must be an integer in [0, 2^32), got ${opts.stream}`);
  } else {
    if (opts.stream !== undefined) throw new TypeError(`${op}: stream needs a seed`);
    seedLo = globalSeed;
    seedHi = 0;
    stream = globalStream++;
    const rt = runtime();
    if (rt.recording) {
      // A replay takes the generator's position then and advances it as this draw did.
      const at = { seed: seedLo, stream };
      rt.onReplay(() => {
        at.seed = globalSeed;
        at.stream = globalStream++;
      });
      dynamic = { seedLo: () => at.seed, stream: () => at.stream };
    }
  }
  randomFill(t, kind, seedLo, seedHi, stream, a, b, dynamic);
  if (opts.requiresGrad) t.requiresGrad = true;
  return t;
}

export const rand = (shape: Shape, opts: RandomOptions = {}): Tensor => draw('uniform', shape, 0, 1, opts, 'rand');
export const uniform = (shape: Shape, low: number, high: number, opts: RandomOptions = {}): Tensor =>
  draw('uniform', shape, low, high, opts, 'uniform');
export const randn = (shape: Shape, opts: RandomOptions & { mean?: number; std?: number } = {}): Tensor =>
  draw('normal', shape, opts.mean ?? 0, opts.std ?? 1, opts, 'randn');
export function randint(low: number, high: number, shape: Shape, opts: RandomOptions = {}): Tensor {
  if (!Number.isInteger(low) || !Number.isInteger(high) || high <= low)
    throw new RangeError(`randint: need integers low < high, got ${low}, ${high}`);
  return draw('randint', shape, low, high, opts, 'randint', 'i32');
}
export const bernoulli = (shape: Shape, p: number, opts: RandomOptions = {}): Tensor => draw('bernoulli', shape, p, 0, opts, 'bernoulli');

/** Row-major host copy of the tensor's elements (f16 is returned as Float32Array). */
export async function toArray(t: Tensor): Promise<Float32Array | Int32Array | Uint32Array> {
  const src = t.isContiguous && t.dtype !== 'f16' ? t : contiguousCopy(t, t.dtype === 'f16' ? 'f32' : t.dtype);
  try {
    const n = src.size;
    const bytes = await runtime().read(src.buffer, src.offset * 4, n * 4);
    return src.dtype === 'i32' ? new Int32Array(bytes) : src.dtype === 'u32' ? new Uint32Array(bytes) : new Float32Array(bytes);
  } finally {
    if (src !== t) src.dispose();
  }
}

/** A contiguous copy (optionally converting dtype). */
export function contiguousCopy(t: Tensor, dtype: DType = t.dtype): Tensor {
  const out = empty(t.shape, dtype);
  const compute = dtype === 'f16' || dtype === 'f32' ? 'f32' : dtype;
  mapInto({ name: 'copy', expr: 'in0', compute }, [t], out);
  return out;
}

/**
 * The same elements with another shape, as a new Tensor object: a view when `t` is contiguous,
 * otherwise a contiguous copy. The caller still owns (and may dispose) `t`.
 */
export function asShape(t: Tensor, shape: readonly number[]): Tensor {
  if (sizeOf(shape) !== t.size) throw new RangeError(`reshape: cannot view ${t.size} elements of shape ${fmt(t.shape)} as ${fmt(shape)}`);
  if (t.isContiguous) return viewOf(t, shape, contiguousStrides(shape), t.offset);
  const c = contiguousCopy(t);
  const v = viewOf(c, shape, contiguousStrides(shape), 0);
  c.dispose();
  return v;
}
