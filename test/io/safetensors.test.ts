import { describe, it, expect, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  SafetensorsError,
  bf16BitsToF32,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
  loadSafetensors,
  openCheckpoint,
  openSafetensors,
  openShardedSafetensors,
  parseSafetensors,
  saveSafetensors,
  serializeSafetensors,
  type WriteTensor,
} from '../../src/io/safetensors.js';
import { goldenPath } from '../helpers/golden.js';

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'rae-safetensors-'));
afterAll(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));
let tmpCounter = 0;
const tmpDir = (): string => fs.mkdtempSync(path.join(tmpRoot, `t${tmpCounter++}-`));

/** Builds a file by hand from a header object (or raw header text) and data bytes. */
function craft(header: unknown, data: Uint8Array = new Uint8Array(0), opts: { pad?: boolean } = {}): Uint8Array {
  let text = typeof header === 'string' ? header : JSON.stringify(header);
  if (opts.pad !== false) while ((text.length + 8) % 8 !== 0) text += ' ';
  const json = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

/** Expects parsing to fail with a SafetensorsError that names the file and matches `problem`. */
function expectBad(bytes: Uint8Array, problem: RegExp): void {
  let caught: unknown;
  try {
    parseSafetensors(bytes, 'crafted.safetensors');
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(SafetensorsError);
  const err = caught as SafetensorsError;
  expect(err.file).toBe('crafted.safetensors');
  expect(err.message.startsWith('crafted.safetensors: ')).toBe(true);
  expect(err.message).toMatch(problem);
}

const f32Bits = (x: number): number => new Uint32Array(new Float32Array([x]).buffer)[0];

describe('half-float conversions', () => {
  const f16Cases: [number, number][] = [
    [1.0, 0x3c00],
    [-2.5, 0xc100],
    [65504, 0x7bff],
    [0, 0x0000],
    [-0, 0x8000],
    [2 ** -24, 0x0001],
    [2 ** -14, 0x0400],
    [0.333251953125, 0x3555],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
  ];
  it('f16 known bit patterns both ways', () => {
    for (const [value, bits] of f16Cases) {
      expect(f32ToF16Bits(value)).toBe(bits);
      expect(Object.is(f16BitsToF32(bits), value)).toBe(true);
    }
    expect(f32ToF16Bits(6e-8)).toBe(0x0001); // nearest subnormal (5.96e-8)
    expect(f16BitsToF32(0x03ff)).toBe(1023 * 2 ** -24); // largest subnormal
    expect(Number.isNaN(f16BitsToF32(0x7e00))).toBe(true);
    expect(Number.isNaN(f16BitsToF32(0x7c01))).toBe(true);
    expect(f32ToF16Bits(NaN) & 0x7e00).toBe(0x7e00); // quiet NaN, not inf
  });
  it('f16 rounding is round-to-nearest-even', () => {
    expect(f32ToF16Bits(65519)).toBe(0x7bff); // below the midpoint to 65536: stays max
    expect(f32ToF16Bits(65520)).toBe(0x7c00); // the tie rounds to even = inf
    expect(f32ToF16Bits(1e6)).toBe(0x7c00);
    expect(f32ToF16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie between 1 and 1+2^-10 → even (1)
    expect(f32ToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie → even (1+2^-9)
    expect(f32ToF16Bits(2 ** -25)).toBe(0x0000); // half the smallest subnormal → 0 (even)
    expect(f32ToF16Bits(2 ** -25 * 1.5)).toBe(0x0001);
    expect(f32ToF16Bits(1e-10)).toBe(0x0000);
    expect(f32ToF16Bits(2 ** -14 * (1 - 2 ** -12))).toBe(0x0400); // subnormal carries into smallest normal
  });
  it('every f16 value survives f16 → f32 → f16', () => {
    for (let h = 0; h < 0x10000; h++) {
      const back = f32ToF16Bits(f16BitsToF32(h));
      if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) expect(back & 0x7e00).toBe(0x7e00);
      else if (back !== h) expect.fail(`f16 0x${h.toString(16)} came back as 0x${back.toString(16)}`);
    }
  });
  it('bf16 known bit patterns and rounding', () => {
    expect(f32ToBf16Bits(3.140625)).toBe(0x4049);
    expect(bf16BitsToF32(0x4049)).toBe(3.140625);
    expect(f32ToBf16Bits(Math.PI)).toBe(0x4049); // 3.14159 → nearest bf16 is 3.140625
    expect(f32ToBf16Bits(1.0)).toBe(0x3f80);
    expect(f32ToBf16Bits(-2.5)).toBe(0xc020);
    expect(f32ToBf16Bits(Infinity)).toBe(0x7f80);
    expect(f32ToBf16Bits(-Infinity)).toBe(0xff80);
    expect(Number.isNaN(bf16BitsToF32(f32ToBf16Bits(NaN)))).toBe(true);
    // A NaN whose payload lives only in the low bits must not round into inf.
    const lowNaN = new Float32Array(new Uint32Array([0x7f800001]).buffer)[0];
    expect(Number.isNaN(bf16BitsToF32(f32ToBf16Bits(lowNaN)))).toBe(true);
    // Ties: 1 + 2^-8 lies between 0x3f80 and 0x3f81 → even 0x3f80; 1 + 3·2^-8 → 0x3f82.
    expect(f32ToBf16Bits(1 + 2 ** -8)).toBe(0x3f80);
    expect(f32ToBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(f32ToBf16Bits(3.4e38)).toBe(0x7f80); // rounds past the largest bf16 to inf
    expect(bf16BitsToF32(0x0001)).toBe(new Float32Array(new Uint32Array([0x00010000]).buffer)[0]); // subnormal
  });
});

describe('round trips', () => {
  const floats = [1.0, -2.5, 65504, 6e-8, Infinity, -Infinity, NaN, 0, 3.140625];
  it('F32 / F64 / F16 / BF16 from f32 data', () => {
    const data = new Float32Array(floats);
    const shape = [3, 3];
    const bytes = serializeSafetensors({
      f32: { shape, data },
      f64: { shape, data: new Float64Array(floats) },
      f16: { shape, data, dtype: 'F16' },
      bf16: { shape, data, dtype: 'BF16' },
    });
    const file = parseSafetensors(bytes);
    expect(file.keys()).toEqual(['bf16', 'f16', 'f32', 'f64']);
    for (const name of file.keys()) {
      const t = file.read(name);
      expect(t.dtype).toBe('f32');
      expect(t.shape).toEqual(shape);
    }
    expect([...file.read('f32').data]).toEqual([...data]);
    expect([...file.read('f64').data]).toEqual([...data]);
    const f16 = file.read('f16').data;
    expect([f16[0], f16[1], f16[2], f16[3], f16[4], f16[5]]).toEqual([1, -2.5, 65504, 2 ** -24, Infinity, -Infinity]);
    expect(Number.isNaN(f16[6])).toBe(true);
    expect(f16[8]).toBe(3.140625);
    const f16Raw = file.readRaw('f16');
    expect(file.info('f16').dtype).toBe('F16');
    expect(new DataView(f16Raw.buffer, f16Raw.byteOffset).getUint16(2, true)).toBe(0xc100);
    const bf16 = file.read('bf16').data;
    expect(bf16[0]).toBe(1);
    expect(bf16[1]).toBe(-2.5);
    expect(bf16[2]).toBe(65536); // 65504 rounds to 2^16 in bf16
    expect(bf16[8]).toBe(3.140625);
    expect(Number.isNaN(bf16[6])).toBe(true);
    const bf16Raw = file.readRaw('bf16');
    expect(new DataView(bf16Raw.buffer, bf16Raw.byteOffset).getUint16(16, true)).toBe(0x4049);
    expect(f32Bits(file.read('f32').data[3])).toBe(f32Bits(6e-8));
  });

  it('integer dtypes, BOOL and defaults from the array type', () => {
    const tensors: Record<string, WriteTensor> = {
      i64: { shape: [3], data: new BigInt64Array([-(2n ** 31n), 0n, 2n ** 31n - 1n]) },
      i64FromNumbers: { shape: [2], data: new Int32Array([-7, 9]), dtype: 'I64' },
      i32: { shape: [2], data: new Int32Array([-(2 ** 31), 2 ** 31 - 1]) },
      i16: { shape: [2], data: new Int16Array([-32768, 32767]) },
      i8: { shape: [2], data: new Int8Array([-128, 127]) },
      u8: { shape: [2], data: new Uint8Array([0, 255]) },
      u16: { shape: [2], data: new Uint16Array([0, 65535]) },
      u32: { shape: [2], data: new Uint32Array([0, 2 ** 32 - 1]) },
      bool: { shape: [3], data: new Uint8Array([1, 0, 1]), dtype: 'BOOL' },
      i8FromF32: { shape: [2], data: new Float32Array([-3, 4]), dtype: 'I8' },
    };
    const file = parseSafetensors(serializeSafetensors(tensors));
    const expectations: Record<string, [string, string, number[]]> = {
      i64: ['I64', 'i32', [-(2 ** 31), 0, 2 ** 31 - 1]],
      i64FromNumbers: ['I64', 'i32', [-7, 9]],
      i32: ['I32', 'i32', [-(2 ** 31), 2 ** 31 - 1]],
      i16: ['I16', 'i32', [-32768, 32767]],
      i8: ['I8', 'i32', [-128, 127]],
      u8: ['U8', 'i32', [0, 255]],
      u16: ['U16', 'i32', [0, 65535]],
      u32: ['U32', 'u32', [0, 2 ** 32 - 1]],
      bool: ['BOOL', 'i32', [1, 0, 1]],
      i8FromF32: ['I8', 'i32', [-3, 4]],
    };
    for (const [name, [stored, engine, values]] of Object.entries(expectations)) {
      expect(file.info(name).dtype).toBe(stored);
      const t = file.read(name);
      expect(t.dtype).toBe(engine);
      expect([...t.data]).toEqual(values);
    }
  });

  it('I64 outside int32 is a clear error naming the tensor', () => {
    const bytes = serializeSafetensors({ big: { shape: [2], data: new BigInt64Array([1n, 2n ** 40n]) } });
    expect(() => parseSafetensors(bytes, 'x.safetensors').read('big')).toThrow(
      /x\.safetensors: tensor "big": I64 value 1099511627776 at index 1/,
    );
    expect(parseSafetensors(bytes).readRaw('big').length).toBe(16); // raw bytes stay available
  });

  it('writer rejects values the dtype cannot hold and shape/length mismatches', () => {
    expect(() => serializeSafetensors({ w: { shape: [2], data: new Float32Array([1.5, 2]), dtype: 'I32' } })).toThrow(
      /tensor "w": value 1\.5 at index 0 cannot be stored as I32/,
    );
    expect(() => serializeSafetensors({ w: { shape: [1], data: new Int32Array([300]), dtype: 'U8' } })).toThrow(SafetensorsError);
    expect(() => serializeSafetensors({ w: { shape: [1], data: new Uint8Array([2]), dtype: 'BOOL' } })).toThrow(/BOOL/);
    expect(() => serializeSafetensors({ w: { shape: [2, 3], data: new Float32Array(5) } })).toThrow(
      /tensor "w": shape \[2,3\] has 6 elements but data has 5/,
    );
    expect(() => serializeSafetensors({ '': { shape: [0], data: new Float32Array(0) } })).toThrow(/invalid tensor name/);
    expect(() => serializeSafetensors({ w: { shape: [-1], data: new Float32Array(0) } })).toThrow(/shape/);
    expect(() => serializeSafetensors({}, { n: 3 as unknown as string })).toThrow(/__metadata__\["n"\] must be a string/);
  });

  it('metadata, empty tensors and scalars', () => {
    const metadata = { format: 'pt', note: 'héllo ✓', __proto__: 'plain key' };
    const bytes = serializeSafetensors(
      new Map<string, WriteTensor>([
        ['scalar', { shape: [], data: new Float32Array([42]) }],
        ['empty', { shape: [3, 0, 2], data: new Float32Array(0) }],
        ['empty16', { shape: [0], data: new Float32Array(0), dtype: 'F16' }],
        ['10', { shape: [1], data: new Int32Array([10]) }],
        ['2', { shape: [1], data: new Int32Array([2]) }],
      ]),
      metadata,
    );
    const file = parseSafetensors(bytes);
    expect(Object.entries(file.metadata)).toEqual(Object.entries(metadata));
    expect(file.read('scalar')).toEqual({ dtype: 'f32', shape: [], data: new Float32Array([42]) });
    expect(file.read('empty').shape).toEqual([3, 0, 2]);
    expect(file.read('empty').data.length).toBe(0);
    expect(file.read('empty16').data.length).toBe(0);
    expect(file.keys()).toEqual(['10', '2', 'empty', 'empty16', 'scalar']);
  });

  it('lays out header and data as the format requires', () => {
    const bytes = serializeSafetensors({ b: { shape: [1], data: new Float32Array([2]) }, a: { shape: [2], data: new Int8Array([1, 2]) } });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(text.trimEnd()).toBe(
      '{"a":{"dtype":"I8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}',
    );
    expect(bytes.length).toBe(8 + n + 6);
    const file = parseSafetensors(bytes);
    expect(file.tensors.get('b')).toEqual({ name: 'b', dtype: 'F32', shape: [1], byteOffset: 8 + n + 2, byteLength: 4 });
    expect([...file.read('b').data]).toEqual([2]); // misaligned F32 is copied, not viewed
    // A Node Buffer at an odd offset (as fs.readFileSync may return) behaves the same.
    const odd = Buffer.alloc(bytes.length + 1);
    odd.set(bytes, 1);
    const fromBuffer = parseSafetensors(odd.subarray(1));
    expect([...fromBuffer.read('b').data]).toEqual([2]);
    expect([...fromBuffer.read('a').data]).toEqual([1, 2]);
  });

  it('saves atomically, opens lazily and loads everything', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'w.safetensors');
    const big = new Float32Array(5_000_000).map((_, i) => i);
    saveSafetensors(file, { big: { shape: [5_000_000], data: big }, half: { shape: [5_000_000], data: big, dtype: 'BF16' } }, { k: 'v' });
    expect(fs.readdirSync(dir)).toEqual(['w.safetensors']); // no temporary left behind
    const opened = openSafetensors(file);
    expect(opened.metadata).toEqual({ k: 'v' });
    expect(opened.read('big').data[4_999_999]).toBe(4_999_999);
    expect(opened.read('half').data[257]).toBe(256); // 257 needs 9 significant bits; RNE → 256
    opened.close();
    expect(() => opened.read('big')).toThrow(/closed/);
    const all = loadSafetensors(file);
    expect([...all.keys()]).toEqual(['big', 'half']);
    // A failing write leaves the existing file untouched.
    expect(() => saveSafetensors(file, { x: { shape: [1], data: new Float32Array([0.5]), dtype: 'U8' } })).toThrow(SafetensorsError);
    expect(fs.readdirSync(dir)).toEqual(['w.safetensors']);
    expect(openSafetensors(file).keys()).toEqual(['big', 'half']);
  });
});

describe('validation of hostile files', () => {
  const f32 = (begin: number, end: number, shape = [(end - begin) / 4]): object => ({ dtype: 'F32', shape, data_offsets: [begin, end] });
  const data8 = new Uint8Array(8);

  it('accepts the crafted baseline', () => {
    expect(parseSafetensors(craft({ a: f32(0, 4), b: f32(4, 8) }, data8)).keys()).toEqual(['a', 'b']);
  });
  it('file shorter than 8 bytes', () => expectBad(new Uint8Array(5), /5 bytes, shorter than the 8-byte header length/));
  it('header length beyond the file and beyond the 100 MB bound', () => {
    const bytes = craft({ a: f32(0, 4) }, new Uint8Array(4));
    new DataView(bytes.buffer).setBigUint64(0, 1000n, true);
    expectBad(bytes, /header length 1000 runs past the end of the file/);
    new DataView(bytes.buffer).setBigUint64(0, 2n ** 63n, true);
    expectBad(bytes, /header length 9223372036854775808 exceeds the 100000000-byte limit/);
  });
  it('header encoding and shape', () => {
    expectBad(craft(' {}'), /does not start with '\{'/);
    expectBad(craft('[1]'), /does not start with '\{'/);
    expectBad(craft('', undefined, { pad: false }), /does not start with '\{'/);
    expectBad(craft('{"a":'), /not valid JSON/);
    const bad = craft('{"\u00e9":1}');
    bad.set([0x7b, 0x22, 0xc3, 0x28], 8); // invalid UTF-8 sequence
    expectBad(bad, /not valid UTF-8/);
    expectBad(
      craft(
        '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}',
        new Uint8Array(4),
      ),
      /repeats the key "a"/,
    );
    expectBad(craft('{"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}', new Uint8Array(4)), /repeats the key "dtype"/);
    const empty = '{"dtype":"F32","shape":[0],"data_offsets":[0,0]}';
    expectBad(craft(`{"a\\u0062":${empty},"ab":${empty}}`), /header repeats the key "ab"/); // escapes decoded before comparing
    expectBad(craft('{"__metadata__":{"k":"1","k":"2"}}'), /"__metadata__" repeats the key "k"/);
    expectBad(craft(`{"a":${'['.repeat(100_000)}${']'.repeat(100_000)}}`), /header nests deeper than 16 levels/);
    expectBad(craft(`{"a":${empty}}}`), /header is not valid JSON \(unexpected text after the object/);
    expectBad(craft(`{"a":${empty},}`), /header is not valid JSON \(expected a key string/);
    expectBad(craft(`{"a":${empty} "b":${empty}}`), /header is not valid JSON/);
    expectBad(craft('{"a":{"dtype":"F32",}}'), /header is not valid JSON \(in the value of "a"/);
  });
  it('entries', () => {
    expectBad(craft({ a: [1] }), /tensor "a": entry is not an object/);
    expectBad(craft({ a: { dtype: 'F32' } }), /tensor "a": missing shape, data_offsets/);
    expectBad(
      craft({ a: { dtype: 'F8_E4M3', shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)),
      /tensor "a": unsupported dtype "F8_E4M3"/,
    );
    expectBad(craft({ a: { dtype: 3, shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)), /unsupported dtype 3/);
    expectBad(craft({ '': f32(0, 4) }, new Uint8Array(4)), /empty name/);
    for (const shape of [[-1], [1.5], ['2'], [2 ** 53], 7, null]) {
      expectBad(
        craft({ a: { dtype: 'F32', shape, data_offsets: [0, 4] } }, new Uint8Array(4)),
        /tensor "a": shape must be an array of non-negative integers/,
      );
    }
    for (const offsets of [[0], [0, 4, 8], [-4, 0], [0, 4.5], [0, '4'], [0, 1e300]]) {
      expectBad(
        craft({ a: { dtype: 'F32', shape: [1], data_offsets: offsets } }, new Uint8Array(4)),
        /tensor "a": data_offsets must be two non-negative integers/,
      );
    }
    expectBad(craft({ a: f32(4, 0, [1]) }, new Uint8Array(4)), /begin 4 is after end 0/);
  });
  it('sizes, ranges and coverage', () => {
    expectBad(craft({ a: f32(0, 8, [3]) }, data8), /tensor "a": data_offsets span 8 bytes but shape \[3\] of F32 needs 12/);
    expectBad(craft({ a: f32(0, 8, [2 ** 30, 2 ** 30, 2 ** 30]) }, data8), /tensor "a": shape .* is too large/);
    expectBad(craft({ a: f32(0, 8, [2 ** 52]) }, data8), /too large/); // count safe, bytes not
    expectBad(craft({ a: f32(0, 12) }, data8), /run past the end of the data section \(8 bytes\)/);
    expectBad(craft({ a: f32(0, 4), b: f32(8, 12) }, new Uint8Array(12)), /gap in the data section: bytes 4\.\.8/);
    expectBad(craft({ a: f32(0, 8), b: f32(4, 8) }, data8), /tensor "b" overlaps/);
    expectBad(craft({ a: f32(0, 4) }, data8), /4 trailing bytes that belong to no tensor/);
    expectBad(craft({}, data8), /8 trailing bytes/);
    expect(parseSafetensors(craft({ a: f32(0, 0, [2 ** 40, 0, 2]) }), 'x').read('a').data.length).toBe(0);
  });
  it('metadata', () => {
    expectBad(craft({ __metadata__: ['x'] }), /__metadata__ must be an object of strings/);
    expectBad(craft({ __metadata__: { a: 1 } }), /__metadata__\["a"\] must be a string, got 1/);
    expect(parseSafetensors(craft({ __metadata__: {} })).metadata).toEqual({});
  });
  it('BOOL bytes other than 0/1', () => {
    const file = parseSafetensors(craft({ m: { dtype: 'BOOL', shape: [2], data_offsets: [0, 2] } }, new Uint8Array([1, 7])), 'b.st');
    expect(() => file.read('m')).toThrow(/b\.st: tensor "m": BOOL byte 7 at index 1/);
  });
  it('files on disk: missing, directory, unknown tensor', () => {
    const dir = tmpDir();
    expect(() => openSafetensors(path.join(dir, 'nope.safetensors'))).toThrow(/nope\.safetensors: cannot open/);
    expect(() => openSafetensors(dir)).toThrow(SafetensorsError);
    const good = path.join(dir, 'g.safetensors');
    saveSafetensors(good, { a: { shape: [1], data: new Float32Array([1]) } });
    expect(() => openSafetensors(good).read('b')).toThrow(/g\.safetensors: no tensor named "b"/);
    const truncated = path.join(dir, 't.safetensors');
    fs.writeFileSync(truncated, fs.readFileSync(good).subarray(0, 20));
    expect(() => openSafetensors(truncated)).toThrow(/t\.safetensors: header length \d+ runs past the end/);
  });
});

describe('sharded checkpoints', () => {
  function makeSharded(weightMap: Record<string, string>, extra: Record<string, unknown> = {}): string {
    const dir = tmpDir();
    saveSafetensors(path.join(dir, 'model-00001-of-00002.safetensors'), {
      a: { shape: [2], data: new Float32Array([1, 2]) },
      b: { shape: [1], data: new Int32Array([5]) },
    });
    saveSafetensors(path.join(dir, 'model-00002-of-00002.safetensors'), { c: { shape: [], data: new Float32Array([3]), dtype: 'F16' } });
    fs.writeFileSync(
      path.join(dir, 'model.safetensors.index.json'),
      JSON.stringify({ metadata: { total_size: 14 }, weight_map: weightMap, ...extra }),
    );
    return dir;
  }
  const goodMap = { a: 'model-00001-of-00002.safetensors', b: 'model-00001-of-00002.safetensors', c: 'model-00002-of-00002.safetensors' };

  it('reads across shards, from the directory or the index path', () => {
    const dir = makeSharded(goodMap);
    for (const where of [dir, path.join(dir, 'model.safetensors.index.json')]) {
      const ckpt = openShardedSafetensors(where);
      expect(ckpt.keys()).toEqual(['a', 'b', 'c']);
      expect(ckpt.metadata).toEqual({ total_size: '14' });
      expect([...ckpt.read('a').data]).toEqual([1, 2]);
      expect(ckpt.read('b')).toEqual({ dtype: 'i32', shape: [1], data: new Int32Array([5]) });
      expect(ckpt.read('c').data[0]).toBe(3);
      expect(ckpt.readRaw('c')).toEqual(new Uint8Array([0x00, 0x42]));
      expect(ckpt.info('c').dtype).toBe('F16');
      expect(() => ckpt.read('zz')).toThrow(/model\.safetensors\.index\.json: no tensor named "zz"/);
      ckpt.close();
    }
    const viaCheckpoint = openCheckpoint(dir);
    expect(viaCheckpoint.keys()).toEqual(['a', 'b', 'c']);
    viaCheckpoint.close();
  });
  it('validates the index', () => {
    expect(() => openShardedSafetensors(makeSharded({ ...goodMap, d: 'model-00003-of-00003.safetensors' }))).toThrow(
      /index\.json: shard "model-00003-of-00003\.safetensors" does not exist/,
    );
    expect(() => openShardedSafetensors(makeSharded({ ...goodMap, c: 'model-00001-of-00002.safetensors' }))).toThrow(
      /weight_map puts "c" in "model-00001-of-00002\.safetensors", which has no such tensor/,
    );
    expect(() => openShardedSafetensors(makeSharded({ a: '../elsewhere.safetensors' }))).toThrow(/points outside the checkpoint directory/);
    expect(() => openShardedSafetensors(makeSharded({ a: 7 } as unknown as Record<string, string>))).toThrow(
      /weight_map\["a"\] must be a file name/,
    );
    expect(() => openShardedSafetensors(makeSharded(goodMap, { weight_map: [] }))).toThrow(/"weight_map" must be an object/);
    const dir = makeSharded(goodMap);
    fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), '{"weight_map": ');
    expect(() => openShardedSafetensors(dir)).toThrow(/index is not valid JSON/);
    fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), '{"weight_map": {}, "weight_map": {}}');
    expect(() => openShardedSafetensors(dir)).toThrow(/index repeats the key "weight_map"/);
    expect(() => openShardedSafetensors(path.join(dir, 'missing'))).toThrow(/missing: cannot read index/);
  });
  it('openCheckpoint prefers model.safetensors and lists what it looked for', () => {
    const dir = makeSharded(goodMap);
    saveSafetensors(path.join(dir, 'model.safetensors'), { single: { shape: [1], data: new Float32Array([1]) } });
    const ckpt = openCheckpoint(dir);
    expect(ckpt.keys()).toEqual(['single']);
    ckpt.close();
    const empty = tmpDir();
    expect(() => openCheckpoint(empty)).toThrow(/no checkpoint: found neither .*model\.safetensors or .*model\.safetensors\.index\.json/);
    expect(() => openCheckpoint(path.join(empty, 'gone'))).toThrow(/directory does not exist/);
  });
});

describe('real fixture', () => {
  it('reads rae_decoder_small.safetensors', () => {
    const FIXTURE = goldenPath('rae_decoder_small');
    const file = openSafetensors(FIXTURE);
    try {
      const keys = file.keys();
      for (const prefix of ['param.', 'input.', 'output.']) expect(keys.some((k) => k.startsWith(prefix))).toBe(true);
      const meta = JSON.parse(file.metadata.meta) as unknown;
      expect(typeof meta).toBe('object');
      for (const name of keys) {
        const t = file.read(name);
        expect(t.data.length).toBe(t.shape.reduce((a, b) => a * b, 1));
        if (t.dtype === 'f32') expect(t.data.every((v) => Number.isFinite(v))).toBe(true);
      }
      // A write of what we read reproduces the tensors exactly.
      const loaded = [...loadSafetensors(FIXTURE)].map(([k, t]) => [k, { shape: t.shape, data: t.data }] as const);
      const again = parseSafetensors(serializeSafetensors(new Map(loaded), file.metadata));
      expect(again.keys()).toEqual(keys);
      for (const name of keys) expect(Buffer.compare(again.readRaw(name), file.readRaw(name))).toBe(0);
    } finally {
      file.close();
    }
  });
});
