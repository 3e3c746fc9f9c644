/** Writing safetensors files: validated up front, encoded in slices, written atomically. */
import * as fs from 'node:fs';
import {
  DTYPE_SIZE,
  SUPPORTED_DTYPES,
  defaultDType,
  encodeTensor,
  isSafetensorsDType,
  type SafetensorsDType,
  type WritableArray,
} from './dtypes.js';
import { METADATA_KEY, SafetensorsError, quote, isCount, errorText, preview, elementCount, parseMetadata } from './safetensors-header.js';

export interface WriteTensor {
  /** Stored dtype; defaults from the array type (Float32Array → F32, ...). Converts if different. */
  dtype?: SafetensorsDType;
  shape: number[];
  data: WritableArray;
}

interface PlannedTensor {
  name: string;
  dtype: SafetensorsDType;
  data: WritableArray;
}

/** Validates everything up front and builds the header, so no bad file is half-written. */
function planWrite(
  label: string,
  tensors: Record<string, WriteTensor> | Map<string, WriteTensor>,
  metadata: Record<string, string> | undefined,
): { header: Uint8Array; planned: PlannedTensor[]; totalBytes: number } {
  const fail = (problem: string): SafetensorsError => new SafetensorsError(label, problem);
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  // Built by hand rather than with JSON.stringify(object): JS objects put integer-like keys
  // ("0", "1") first, and the header should list tensors in file order.
  const parts: string[] = [];
  if (metadata !== undefined) parts.push(`${quote(METADATA_KEY)}:${JSON.stringify(parseMetadata(metadata, fail))}`);
  const planned: PlannedTensor[] = [];
  let offset = 0;
  for (const [name, t] of entries) {
    const where = `tensor ${preview(name)}`;
    if (name === '' || name === METADATA_KEY) throw fail(`invalid tensor name ${preview(name)}`);
    if (!Array.isArray(t.shape) || !t.shape.every(isCount))
      throw fail(`${where}: shape must be non-negative integers, got ${preview(t.shape)}`);
    const dtype = t.dtype ?? defaultDType(t.data);
    if (!isSafetensorsDType(dtype)) throw fail(`${where}: cannot tell the dtype (give one of ${SUPPORTED_DTYPES.join(', ')})`);
    const count = elementCount(t.shape);
    if (count !== t.data.length) {
      throw fail(`${where}: shape ${preview(t.shape)} has ${count ?? 'too many'} elements but data has ${t.data.length}`);
    }
    const end = offset + count * DTYPE_SIZE[dtype];
    parts.push(`${quote(name)}:{"dtype":"${dtype}","shape":${JSON.stringify(t.shape)},"data_offsets":[${offset},${end}]}`);
    planned.push({ name, dtype, data: t.data });
    offset = end;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  // Pad with spaces so the data section starts 8-byte aligned.
  const paddedLength = Math.ceil(json.length / 8) * 8;
  const header = new Uint8Array(8 + paddedLength).fill(0x20, 8);
  new DataView(header.buffer).setBigUint64(0, BigInt(paddedLength), true);
  header.set(json, 8);
  return { header, planned, totalBytes: header.length + offset };
}

/** Encodes one tensor in slices, so converting a huge tensor never needs a full-size copy. */
function* encodeChunks(label: string, t: PlannedTensor, chunkElements = 1 << 22): Generator<Uint8Array> {
  const fail = (problem: string): never => {
    throw new SafetensorsError(label, `tensor ${preview(t.name)}: ${problem}`);
  };
  for (let start = 0; start < t.data.length; start += chunkElements) {
    yield encodeTensor(t.dtype, t.data.subarray(start, start + chunkElements), fail);
  }
}

export function serializeSafetensors(
  tensors: Record<string, WriteTensor> | Map<string, WriteTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  const label = '<serialize>';
  const { header, planned, totalBytes } = planWrite(label, tensors, metadata);
  const out = new Uint8Array(totalBytes);
  out.set(header);
  let offset = header.length;
  for (const t of planned) {
    for (const chunk of encodeChunks(label, t)) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
  }
  return out;
}

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length; ) done += fs.writeSync(fd, bytes, done, bytes.length - done);
}

/**
 * Writes a file atomically: streams header and tensors (one slice at a time) into a temporary
 * file next to the target, fsyncs it, then renames it over the target. A crash or a bad value
 * leaves the previous file intact.
 */
export function saveSafetensors(
  filePath: string,
  tensors: Record<string, WriteTensor> | Map<string, WriteTensor>,
  metadata?: Record<string, string>,
): void {
  const { header, planned } = planWrite(filePath, tensors, metadata);
  const tmp = `${filePath}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'wx');
    writeAll(fd, header);
    for (const t of planned) for (const chunk of encodeChunks(filePath, t)) writeAll(fd, chunk);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, filePath);
  } catch (e) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    if (e instanceof SafetensorsError) throw e;
    throw new SafetensorsError(filePath, `write failed (${errorText(e)})`);
  }
}
