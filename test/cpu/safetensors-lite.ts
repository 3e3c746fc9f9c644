/**
 * Minimal safetensors reader for tests: 8-byte little-endian header length, JSON header, then
 * raw little-endian tensor bytes. Only what the golden fixtures use (F32, I32) is decoded.
 */
import { readFileSync } from 'node:fs';
import type { NDArray } from '../../src/cpu/index.js';

export interface SafetensorsFile {
  names: string[];
  metadata: Record<string, string>;
  get(name: string): NDArray;
}

export function readSafetensors(path: string): SafetensorsFile {
  const buf = readFileSync(path);
  const headerLen = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8')) as Record<string, unknown>;
  const metadata = (header.__metadata__ ?? {}) as Record<string, string>;
  delete header.__metadata__;
  const base = 8 + headerLen;
  const entries = header as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  return {
    names: Object.keys(entries),
    metadata,
    get(name: string): NDArray {
      const e = entries[name];
      if (!e) throw new Error(`safetensors: no tensor '${name}'`);
      const [start, end] = e.data_offsets;
      const view = new DataView(buf.buffer, buf.byteOffset + base + start, end - start);
      const n = (end - start) / 4;
      const data = new Float64Array(n);
      if (e.dtype === 'F32') for (let i = 0; i < n; i++) data[i] = view.getFloat32(i * 4, true);
      else if (e.dtype === 'I32') for (let i = 0; i < n; i++) data[i] = view.getInt32(i * 4, true);
      else throw new Error(`safetensors: dtype ${e.dtype} not supported here`);
      return { data, shape: [...e.shape] };
    },
  };
}
