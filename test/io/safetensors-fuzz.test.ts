import { describe, it, expect, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  SafetensorsError,
  openSafetensors,
  parseSafetensors,
  serializeSafetensors,
  type SafetensorsFile,
} from '../../src/io/safetensors.js';
import { makeRng } from '../../src/cpu/random.js';

/** mulberry32: tiny seeded PRNG, so every failure reproduces from its iteration number. */
/** Seeded host RNG (mulberry32), shared with the float64 reference. */
const mulberry32 = makeRng;

const BASES: Uint8Array[] = [
  serializeSafetensors(
    {
      weight: { shape: [2, 3], data: new Float32Array([1, -2.5, 65504, 6e-8, Infinity, NaN]) },
      half: { shape: [3], data: new Float32Array([1, 2, 3]), dtype: 'F16' },
      brain: { shape: [2], data: new Float32Array([3.140625, -1]), dtype: 'BF16' },
      labels: { shape: [2], data: new BigInt64Array([7n, -1n]) },
      mask: { shape: [3], data: new Uint8Array([1, 0, 1]), dtype: 'BOOL' },
      empty: { shape: [0, 4], data: new Float32Array(0) },
      scalar: { shape: [], data: new Float64Array([0.5]) },
    },
    { format: 'pt', meta: '{"a":1}' },
  ),
  serializeSafetensors({
    a: { shape: [4], data: new Int8Array([1, 2, 3, 4]) },
    b: { shape: [1, 1], data: new Uint32Array([4e9]) },
    c: { shape: [2], data: new Int16Array([-5, 5]) },
    d: { shape: [2], data: new Uint16Array([9, 65535]) },
  }),
  serializeSafetensors({}, { only: 'metadata' }),
];

const NASTY_NUMBERS = [
  '-1',
  '0.5',
  '1e400',
  '-0',
  '1e21',
  '9007199254740993',
  '18446744073709551616',
  '4294967296',
  '99999999999999999999999999',
  '2',
  '0',
  '"4"',
  'null',
  'true',
  '[]',
  '{}',
  '[0,0]',
  '1.0',
];
const NASTY_STRINGS = ['"F8_E4M3"', '"f32"', '""', '"__metadata__"', '"BOOL"', '"I64"', '"U32"', '7', '{"x":"y"}'];

function headerLength(bytes: Uint8Array): number {
  return bytes.length < 8 ? 0 : Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
}

function withHeader(text: string, data: Uint8Array, rand: () => number): Uint8Array {
  const json = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + json.length + data.length);
  // Usually a consistent length prefix (to reach the deeper checks); sometimes a stale one.
  const declared = rand() < 0.85 ? json.length : json.length + Math.floor(rand() * 17) - 8;
  new DataView(out.buffer).setBigUint64(0, BigInt(Math.max(0, declared)), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

/** Returns a mutated copy of `base` and a description of what was done. */
function mutate(base: Uint8Array, rand: () => number): [Uint8Array, string] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const n = headerLength(base);
  const headerText = new TextDecoder().decode(base.subarray(8, 8 + n));
  const data = base.subarray(8 + n);
  const kind = Math.floor(rand() * 8);
  switch (kind) {
    case 0: {
      // flip bits in the length prefix or the header
      const out = base.slice();
      const flips = 1 + Math.floor(rand() * 4);
      for (let i = 0; i < flips; i++) out[Math.floor(rand() * (8 + n))] ^= 1 << Math.floor(rand() * 8);
      return [out, `bit flips x${flips}`];
    }
    case 1: {
      // truncate
      const len = Math.floor(rand() * base.length);
      return [base.slice(0, len), `truncate to ${len}`];
    }
    case 2: {
      // edit the declared header length
      const out = base.slice();
      const choices = [
        0n,
        1n,
        BigInt(n - 1),
        BigInt(n + 1),
        BigInt(n + data.length),
        BigInt(base.length),
        2n ** 32n,
        100_000_001n,
        2n ** 63n,
        2n ** 64n - 1n,
        BigInt(Math.floor(rand() * 2 ** 32)),
      ];
      const v = pick(choices);
      new DataView(out.buffer).setBigUint64(0, v < 0n ? 0n : v, true);
      return [out, `header length := ${v}`];
    }
    case 3: {
      // replace a number in the JSON with something hostile
      const numbers = [...headerText.matchAll(/-?\d+(\.\d+)?([eE][+-]?\d+)?/g)];
      if (numbers.length === 0) return [base.slice(), 'no-op'];
      const m = pick(numbers);
      const token = pick(NASTY_NUMBERS);
      const text = headerText.slice(0, m.index) + token + headerText.slice(m.index! + m[0].length);
      return [withHeader(text, data, rand), `number ${m[0]} at ${m.index} := ${token}`];
    }
    case 4: {
      // replace a string in the JSON (dtype, name, key)
      const strings = [...headerText.matchAll(/"(?:[^"\\]|\\.)*"/g)];
      if (strings.length === 0) return [base.slice(), 'no-op'];
      const m = pick(strings);
      const token = pick(NASTY_STRINGS);
      const text = headerText.slice(0, m.index) + token + headerText.slice(m.index! + m[0].length);
      return [withHeader(text, data, rand), `string ${m[0]} := ${token}`];
    }
    case 5: {
      // splice a structural fragment somewhere in the header
      const fragments = [
        '{',
        '}',
        '[',
        ']',
        ',',
        ':',
        '"',
        '\\',
        '\u0000',
        '\u00e9',
        '"x":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},',
        '"__metadata__":{"k":"v"},',
      ];
      const at = Math.floor(rand() * (headerText.length + 1));
      const frag = pick(fragments);
      return [withHeader(headerText.slice(0, at) + frag + headerText.slice(at), data, rand), `insert ${JSON.stringify(frag)} at ${at}`];
    }
    case 6: {
      // corrupt data bytes (BOOL/I64 values, NaN payloads): the header stays valid
      const out = base.slice();
      if (data.length > 0) for (let i = 0; i < 3; i++) out[8 + n + Math.floor(rand() * data.length)] = Math.floor(rand() * 256);
      return [out, 'data bytes'];
    }
    default: {
      // grow or shrink the data section
      const extra = Math.floor(rand() * 9) - 4;
      if (extra >= 0) {
        const out = new Uint8Array(base.length + extra);
        out.set(base);
        return [out, `append ${extra}`];
      }
      return [base.slice(0, base.length + extra), `drop ${-extra}`];
    }
  }
}

/** Parses and reads everything; a successful parse must describe the bytes consistently. */
function exercise(file: SafetensorsFile, totalBytes: number): void {
  let dataEnd = 0;
  for (const name of file.keys()) {
    const info = file.tensors.get(name)!;
    expect(info.byteOffset).toBeGreaterThanOrEqual(8);
    expect(info.byteOffset + info.byteLength).toBeLessThanOrEqual(totalBytes);
    dataEnd = Math.max(dataEnd, info.byteOffset + info.byteLength);
    expect(file.readRaw(name).length).toBe(info.byteLength);
    try {
      const t = file.read(name);
      expect(t.data.length).toBe(info.shape.reduce((a, b) => a * b, 1));
      expect(t.shape).toEqual(info.shape);
    } catch (e) {
      if (!(e instanceof SafetensorsError)) throw e;
    }
  }
  if (file.keys().length > 0) expect(dataEnd).toBe(totalBytes); // data section fully covered
}

describe('safetensors fuzz', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rae-st-fuzz-'));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  // Override to explore further, e.g. SAFETENSORS_FUZZ_SEED=7 SAFETENSORS_FUZZ_ITERATIONS=100000.
  const seed = Number(process.env.SAFETENSORS_FUZZ_SEED ?? 0x5afe7e45);
  const iterations = Number(process.env.SAFETENSORS_FUZZ_ITERATIONS ?? 2000);

  it(`${iterations} seeded mutations: success with consistent results or SafetensorsError, nothing else`, () => {
    const rand = mulberry32(seed);
    const outcomes = { ok: 0, rejected: 0 };
    for (let iteration = 0; iteration < iterations; iteration++) {
      const base = BASES[iteration % BASES.length];
      const [bytes, what] = mutate(base, rand);
      const t0 = performance.now();
      // Every 40th case goes through the file path (positioned reads) instead of memory.
      const viaFile = iteration % 40 === 0;
      const filePath = path.join(tmp, `case${iteration}.safetensors`);
      if (viaFile) fs.writeFileSync(filePath, bytes);
      try {
        const file = viaFile ? openSafetensors(filePath) : parseSafetensors(bytes, `case${iteration}`);
        exercise(file, bytes.length);
        file.close();
        outcomes.ok++;
      } catch (e) {
        if (!(e instanceof SafetensorsError)) {
          throw new Error(`iteration ${iteration} (${what}) threw ${String(e)}`, { cause: e });
        }
        expect(e.message.startsWith(viaFile ? filePath : `case${iteration}`)).toBe(true);
        outcomes.rejected++;
      }
      if (viaFile) fs.rmSync(filePath);
      const ms = performance.now() - t0;
      // A hang guard, not a timing goal: a hostile header must never make parsing crawl.
      if (ms > 10_000) throw new Error(`iteration ${iteration} (${what}) took ${ms.toFixed(0)} ms`);
    }
    // Both branches must be exercised, or the mutations are too weak (or too strong) to mean much.
    expect(outcomes.ok).toBeGreaterThan(iterations / 20);
    expect(outcomes.rejected).toBeGreaterThan(iterations / 4);
  });
});
