/**
 * `loadFidInceptionSafetensors` on a synthetic file with the FID Inception layout (every key and
 * shape, F16 zeros plus marked values) and on damaged variants of it made by editing only the
 * header (a tensor renamed, a shape transposed at the same byte size) or one value (NaN): each
 * problem is named.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  FID_INCEPTION_OPTIONAL,
  FID_INCEPTION_REQUIRED,
  FidInceptionLayoutError,
  loadFidInceptionSafetensors,
} from '../../src/eval/fid-inception-layout.js';
import { serializeSafetensors, type WriteTensor } from '../../src/io/index.js';

const dir = mkdtempSync(path.join(tmpdir(), 'rae-fid-inception-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function synthetic(): Uint8Array {
  const tensors: Record<string, WriteTensor> = {};
  for (const t of [...FID_INCEPTION_REQUIRED, ...FID_INCEPTION_OPTIONAL]) {
    const data = new Float32Array(t.shape.reduce((a, b) => a * b, 1));
    data[0] = t.shape[0]; // a marker to see the right tensor came back
    tensors[t.name] = { dtype: 'F16', shape: t.shape, data };
  }
  tensors['Conv2d_1a_3x3.bn.num_batches_tracked'] = { dtype: 'I64', shape: [], data: new BigInt64Array([1n]) };
  return serializeSafetensors(tensors);
}

/** Rewrites the JSON header (the data section is kept byte for byte). */
function editHeader(bytes: Uint8Array, edit: (header: Record<string, { shape: number[] }>) => void): Uint8Array {
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = Number(view.readBigUInt64LE(0));
  const header = JSON.parse(view.subarray(8, 8 + length).toString('utf8'));
  edit(header);
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const out = Buffer.alloc(8 + json.length + (bytes.length - 8 - length));
  out.writeBigUInt64LE(BigInt(json.length), 0);
  out.write(json, 8, 'utf8');
  view.copy(out, 8 + json.length, 8 + length);
  return out;
}

function write(name: string, bytes: Uint8Array): string {
  const file = path.join(dir, name);
  writeFileSync(file, bytes);
  return file;
}

describe('FID Inception safetensors layout', () => {
  const good = synthetic();

  it('has the 94 convolutions of InceptionV3 and loads a file with that layout', () => {
    expect(FID_INCEPTION_REQUIRED.length).toBe(94 * 5);
    const weights = loadFidInceptionSafetensors(write('good.safetensors', good));
    expect(weights.size).toBe(94 * 5 + 2);
    expect(weights.get('Mixed_7c.branch_pool.conv.weight')?.shape).toEqual([192, 2048, 1, 1]);
    expect(weights.get('Mixed_7c.branch_pool.conv.weight')?.data[0]).toBe(192);
    expect(weights.get('Conv2d_1a_3x3.conv.weight')?.shape).toEqual([32, 3, 3, 3]);
    expect(weights.has('Conv2d_1a_3x3.bn.num_batches_tracked')).toBe(false);
  }, 120_000);

  it('names a missing, an unexpected and a mis-shaped tensor', () => {
    const renamed = editHeader(good, (h) => {
      h['Mixed_6b.branch7x7_2.convv.weight'] = h['Mixed_6b.branch7x7_2.conv.weight'];
      delete h['Mixed_6b.branch7x7_2.conv.weight'];
    });
    const file = write('renamed.safetensors', renamed);
    expect(() => loadFidInceptionSafetensors(file)).toThrow(FidInceptionLayoutError);
    expect(() => loadFidInceptionSafetensors(file)).toThrow(
      /missing tensor Mixed_6b\.branch7x7_2\.conv\.weight \(shape \[128, 128, 1, 7\]\)/,
    );
    expect(() => loadFidInceptionSafetensors(file)).toThrow(/unexpected tensor Mixed_6b\.branch7x7_2\.convv\.weight/);
    const transposed = editHeader(good, (h) => {
      h['Mixed_6b.branch7x7_2.conv.weight'].shape = [128, 128, 7, 1];
    });
    expect(() => loadFidInceptionSafetensors(write('transposed.safetensors', transposed))).toThrow(
      /tensor Mixed_6b\.branch7x7_2\.conv\.weight has shape \[128, 128, 7, 1\], expected \[128, 128, 1, 7\]/,
    );
  }, 120_000);

  it('names a tensor holding a NaN', () => {
    const bytes = Buffer.from(good);
    const length = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + length).toString('utf8'));
    const at = 8 + length + header['Mixed_5b.branch1x1.bn.running_var'].data_offsets[0] + 2 * 5;
    bytes.writeUInt16LE(0x7e00, at); // an f16 NaN as element 5
    expect(() => loadFidInceptionSafetensors(write('nan.safetensors', bytes))).toThrow(
      /Mixed_5b\.branch1x1\.bn\.running_var has a non-finite value \(NaN\) at index 5/,
    );
  }, 120_000);
});
