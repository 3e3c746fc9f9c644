/**
 * Element types of the safetensors format and the conversions between their little-endian
 * bytes and the arrays the engine holds (f32 / i32 / u32). Half floats (F16, BF16) are
 * converted by hand with bit manipulation: JavaScript has no native half-precision arrays
 * on Node 20.
 */

export type SafetensorsDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'U16' | 'U32' | 'BOOL';

/** Bytes per element, keyed by dtype. Also the set of dtypes this module understands. */
export const DTYPE_SIZE: Readonly<Record<SafetensorsDType, number>> = Object.freeze({
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  U16: 2,
  U32: 4,
  BOOL: 1,
});

export const SUPPORTED_DTYPES = Object.keys(DTYPE_SIZE) as SafetensorsDType[];

export function isSafetensorsDType(value: unknown): value is SafetensorsDType {
  return typeof value === 'string' && Object.hasOwn(DTYPE_SIZE, value);
}

/** What a tensor becomes once read: the engine only computes in f32, i32 and u32. */
export type EngineTensorData =
  | { dtype: 'f32'; data: Float32Array }
  | { dtype: 'i32'; data: Int32Array }
  | { dtype: 'u32'; data: Uint32Array };

/** Typed arrays the writer accepts as tensor data. */
export type WritableArray =
  | Float32Array
  | Float64Array
  | Int32Array
  | Uint32Array
  | Uint8Array
  | Int8Array
  | Int16Array
  | Uint16Array
  | BigInt64Array;

/** Called with a description of bad data; must throw (the caller adds file and tensor names). */
export type Fail = (problem: string) => never;

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// Scratch space for reinterpreting one float's bits.
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

// ---------------------------------------------------------------------------------------------
// Scalar half-float conversions

/** f16 bit pattern → f32 bit pattern (exact: every f16 value is representable in f32). */
function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exponent = (h >>> 10) & 0x1f;
  let mantissa = h & 0x3ff;
  // Inf and NaN: keep the payload so NaNs stay NaN (and quiet/signalling bits survive).
  if (exponent === 0x1f) return (sign | 0x7f800000 | (mantissa << 13)) >>> 0;
  // Normal: rebias the exponent from 15 to 127.
  if (exponent !== 0) return (sign | ((exponent + 112) << 23) | (mantissa << 13)) >>> 0;
  if (mantissa === 0) return sign >>> 0; // ±0
  // Subnormal (mantissa × 2^-24): normalise, since in f32 it is an ordinary normal number.
  let biased = 113; // f32 biased exponent of 2^-14, the f16 subnormal scale
  while ((mantissa & 0x400) === 0) {
    mantissa <<= 1;
    biased--;
  }
  return (sign | (biased << 23) | ((mantissa & 0x3ff) << 13)) >>> 0;
}

export function f16BitsToF32(h: number): number {
  scratchU32[0] = f16BitsToF32Bits(h & 0xffff);
  return scratchF32[0];
}

/**
 * Number → f16 bits, rounding to nearest with ties to even. The value is first rounded to f32
 * (the engine's precision), so an f64 input lying extremely close to an f16 tie could round
 * differently than a direct f64 → f16 conversion would.
 */
export function f32ToF16Bits(value: number): number {
  scratchF32[0] = value;
  const bits = scratchU32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) {
    // Inf stays inf; NaN becomes a quiet NaN keeping the top payload bits.
    return mantissa === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mantissa >>> 13);
  }
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00; // ≥ 65536: beyond every rounding to 65504
  if (halfExponent <= 0) {
    // Result is subnormal or zero. Below half the smallest subnormal (2^-25) it rounds to 0;
    // the early return also keeps the shift below 32.
    if (halfExponent < -10) return sign;
    const full = mantissa | 0x800000; // restore the implicit leading 1
    const shift = 14 - halfExponent;
    let half = full >>> shift;
    const rest = full & ((1 << shift) - 1);
    const tie = 1 << (shift - 1);
    if (rest > tie || (rest === tie && (half & 1) === 1)) half++; // may carry into the smallest normal: correct
    return sign | half;
  }
  let half = (halfExponent << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1)) half++; // a carry into 0x7c00 is the correct overflow to inf
  return sign | half;
}

export function bf16BitsToF32(b: number): number {
  scratchU32[0] = (b & 0xffff) << 16;
  return scratchF32[0];
}

/** Number → bf16 bits (the top half of the f32), rounding to nearest with ties to even. */
export function f32ToBf16Bits(value: number): number {
  scratchF32[0] = value;
  const bits = scratchU32[0];
  // Rounding a NaN could carry it into inf; keep it a (quiet) NaN instead.
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x40) & 0xffff;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

// A 256 KiB table makes bulk f16 decoding a single lookup per element; built on first use.
let f16Table: Uint32Array | undefined;
function f16ToF32BitsTable(): Uint32Array {
  if (!f16Table) {
    f16Table = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32Bits(h);
  }
  return f16Table;
}

// ---------------------------------------------------------------------------------------------
// Bulk decoding (file bytes → engine arrays)

function swapBytesInPlace(bytes: Uint8Array, size: number): void {
  for (let i = 0; i < bytes.length; i += size) bytes.subarray(i, i + size).reverse();
}

/**
 * Gives bytes that a typed array of `size`-byte elements can view directly: aligned and in host
 * order. Copies only when it must (bytes shared with a caller's buffer, misaligned, or a
 * big-endian host), so an owned aligned F32/I32/U32 read needs no second copy.
 */
function hostOrderBytes(raw: Uint8Array, size: number, owned: boolean): Uint8Array {
  // new Uint8Array(view) always copies (a Node Buffer's slice() would not).
  const bytes = !owned || raw.byteOffset % size !== 0 ? new Uint8Array(raw) : raw;
  if (!HOST_LITTLE_ENDIAN && size > 1) swapBytesInPlace(bytes, size);
  return bytes;
}

/**
 * Converts a tensor's little-endian bytes (length already validated as a multiple of the
 * element size) into an engine array. `owned` says the bytes are a private copy that may be
 * reused as the result's storage.
 */
export function decodeTensor(dtype: SafetensorsDType, raw: Uint8Array, owned: boolean, fail: Fail): EngineTensorData {
  const size = DTYPE_SIZE[dtype];
  const count = raw.byteLength / size;
  const b = hostOrderBytes(raw, size, owned);
  switch (dtype) {
    case 'F32':
      return { dtype: 'f32', data: new Float32Array(b.buffer, b.byteOffset, count) };
    case 'F64':
      return { dtype: 'f32', data: new Float32Array(new Float64Array(b.buffer, b.byteOffset, count)) };
    case 'F16': {
      const table = f16ToF32BitsTable();
      const src = new Uint16Array(b.buffer, b.byteOffset, count);
      const out = new Uint32Array(count);
      for (let i = 0; i < count; i++) out[i] = table[src[i]];
      return { dtype: 'f32', data: new Float32Array(out.buffer) };
    }
    case 'BF16': {
      const src = new Uint16Array(b.buffer, b.byteOffset, count);
      const out = new Uint32Array(count);
      for (let i = 0; i < count; i++) out[i] = src[i] << 16;
      return { dtype: 'f32', data: new Float32Array(out.buffer) };
    }
    case 'I32':
      return { dtype: 'i32', data: new Int32Array(b.buffer, b.byteOffset, count) };
    case 'U32':
      return { dtype: 'u32', data: new Uint32Array(b.buffer, b.byteOffset, count) };
    // Narrow integers widen exactly; the Int32Array constructor converts element by element.
    case 'I16':
      return { dtype: 'i32', data: new Int32Array(new Int16Array(b.buffer, b.byteOffset, count)) };
    case 'U16':
      return { dtype: 'i32', data: new Int32Array(new Uint16Array(b.buffer, b.byteOffset, count)) };
    case 'I8':
      return { dtype: 'i32', data: new Int32Array(new Int8Array(b.buffer, b.byteOffset, count)) };
    case 'U8':
      return { dtype: 'i32', data: new Int32Array(b.subarray(0, count)) };
    case 'I64': {
      // Read each value as two 32-bit words; it fits int32 exactly when the high word is the
      // sign extension of the low one. Avoids a BigInt per element.
      const words = new Int32Array(b.buffer, b.byteOffset, count * 2);
      const [lo, hi] = HOST_LITTLE_ENDIAN ? [0, 1] : [1, 0];
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) {
        const low = words[2 * i + lo];
        if (words[2 * i + hi] !== low >> 31) {
          const value = new BigInt64Array(b.buffer, b.byteOffset + 8 * i, 1)[0];
          fail(`I64 value ${value} at index ${i} is outside the int32 range the engine holds`);
        }
        out[i] = low;
      }
      return { dtype: 'i32', data: out };
    }
    case 'BOOL': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) {
        const v = b[i];
        if (v > 1) fail(`BOOL byte ${v} at index ${i} is neither 0 nor 1`);
        out[i] = v;
      }
      return { dtype: 'i32', data: out };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Bulk encoding (typed arrays → file bytes)

/** The dtype a typed array is written as when none is given. */
export function defaultDType(data: WritableArray): SafetensorsDType | undefined {
  if (data instanceof Float32Array) return 'F32';
  if (data instanceof Float64Array) return 'F64';
  if (data instanceof Int32Array) return 'I32';
  if (data instanceof Uint32Array) return 'U32';
  if (data instanceof Uint8Array) return 'U8';
  if (data instanceof Int8Array) return 'I8';
  if (data instanceof Int16Array) return 'I16';
  if (data instanceof Uint16Array) return 'U16';
  if (data instanceof BigInt64Array) return 'I64';
  return undefined;
}

type NumericArrayCtor =
  | Float64ArrayConstructor
  | Float32ArrayConstructor
  | Int32ArrayConstructor
  | Uint32ArrayConstructor
  | Int16ArrayConstructor
  | Uint16ArrayConstructor
  | Int8ArrayConstructor
  | Uint8ArrayConstructor;

/** Integer dtypes stored through a native typed array, with their exact value range. */
const INTEGER_TARGETS: Partial<Record<SafetensorsDType, [NumericArrayCtor, number, number]>> = {
  I32: [Int32Array, -(2 ** 31), 2 ** 31 - 1],
  U32: [Uint32Array, 0, 2 ** 32 - 1],
  I16: [Int16Array, -(2 ** 15), 2 ** 15 - 1],
  U16: [Uint16Array, 0, 2 ** 16 - 1],
  I8: [Int8Array, -128, 127],
  U8: [Uint8Array, 0, 255],
  BOOL: [Uint8Array, 0, 1],
};

function littleEndianBytes(array: ArrayBufferView, size: number): Uint8Array {
  const bytes = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
  if (HOST_LITTLE_ENDIAN || size === 1) return bytes;
  const copy = bytes.slice();
  swapBytesInPlace(copy, size);
  return copy;
}

/**
 * Encodes `data` as little-endian bytes of `dtype`. Values that the target cannot hold exactly
 * (fractions or out-of-range numbers for integer dtypes, non-0/1 for BOOL) are reported through
 * `fail` rather than silently wrapped. When the array already has the target's layout on a
 * little-endian host the result is a view of it, not a copy.
 */
export function encodeTensor(dtype: SafetensorsDType, data: WritableArray, fail: Fail): Uint8Array {
  const size = DTYPE_SIZE[dtype];
  if (data instanceof BigInt64Array) {
    if (dtype === 'I64') return littleEndianBytes(data, 8);
    const asNumbers = new Float64Array(data.length);
    for (let i = 0; i < data.length; i++) asNumbers[i] = Number(data[i]);
    return encodeTensor(dtype, asNumbers, fail);
  }
  const n = data.length;
  switch (dtype) {
    case 'F32':
      return littleEndianBytes(data instanceof Float32Array ? data : new Float32Array(data), 4);
    case 'F64':
      return littleEndianBytes(data instanceof Float64Array ? data : new Float64Array(data), 8);
    case 'F16':
    case 'BF16': {
      const convert = dtype === 'F16' ? f32ToF16Bits : f32ToBf16Bits;
      const out = new Uint16Array(n);
      for (let i = 0; i < n; i++) out[i] = convert(data[i]);
      return littleEndianBytes(out, 2);
    }
    case 'I64': {
      const out = new BigInt64Array(n);
      for (let i = 0; i < n; i++) {
        const v = data[i];
        if (!Number.isInteger(v) || v < -(2 ** 63) || v >= 2 ** 63) fail(`value ${v} at index ${i} cannot be stored as I64`);
        out[i] = BigInt(v);
      }
      return littleEndianBytes(out, 8);
    }
    default: {
      const [Ctor, min, max] = INTEGER_TARGETS[dtype]!;
      // Same element type already (an Int32Array written as I32, ...): no check, no copy.
      if (data.constructor === Ctor && dtype !== 'BOOL') return littleEndianBytes(data, size);
      for (let i = 0; i < n; i++) {
        const v = data[i];
        if (!Number.isInteger(v) || v < min || v > max) fail(`value ${v} at index ${i} cannot be stored as ${dtype}`);
      }
      return littleEndianBytes(new Ctor(data), size);
    }
  }
}
