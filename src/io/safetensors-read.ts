/** Reading safetensors files lazily (positioned reads, one tensor at a time) or from memory. */
import * as fs from 'node:fs';
import { decodeTensor } from './dtypes.js';
import {
  type TensorInfo,
  type LoadedTensor,
  SafetensorsError,
  type SafetensorsFile,
  errorText,
  preview,
  type ByteSource,
  parseHeader,
} from './safetensors-header.js';

function bufferSource(bytes: Uint8Array): ByteSource {
  // A plain Uint8Array view, so a Node Buffer argument does not leak Buffer semantics.
  const view = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { size: view.byteLength, owned: false, read: (p, n) => view.subarray(p, p + n), close: () => {} };
}

function fileSource(fd: number, label: string, size: number): ByteSource {
  const read = (position: number, length: number): Uint8Array => {
    // A fresh ArrayBuffer (not Buffer.allocUnsafe's shared pool) so typed views are aligned.
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      let n: number;
      try {
        n = fs.readSync(fd, out, done, length - done, position + done);
      } catch (e) {
        throw new SafetensorsError(label, `read failed at byte ${position + done} (${errorText(e)})`);
      }
      if (n === 0) throw new SafetensorsError(label, `unexpected end of file at byte ${position + done} (file changed while open?)`);
      done += n;
    }
    return out;
  };
  return { size, owned: true, read, close: () => fs.closeSync(fd) };
}

function makeFile(label: string, src: ByteSource): SafetensorsFile {
  const { metadata, tensors } = parseHeader(label, src);
  const names = [...tensors.keys()].sort();
  let closed = false;
  const info = (name: string): TensorInfo => {
    if (closed) throw new SafetensorsError(label, `cannot read ${preview(name)}: file is closed`);
    const found = tensors.get(name);
    if (!found) throw new SafetensorsError(label, `no tensor named ${preview(name)}`);
    return found;
  };
  return {
    path: label,
    metadata,
    tensors,
    keys: () => names.slice(),
    has: (name) => tensors.has(name),
    info,
    readRaw: (name) => {
      const t = info(name);
      return src.read(t.byteOffset, t.byteLength);
    },
    read: (name) => {
      const t = info(name);
      const raw = src.read(t.byteOffset, t.byteLength);
      const decoded = decodeTensor(t.dtype, raw, src.owned, (problem) => {
        throw new SafetensorsError(label, `tensor ${preview(name)}: ${problem}`);
      });
      return { ...decoded, shape: t.shape.slice() };
    },
    close: () => {
      if (!closed) {
        closed = true;
        src.close();
      }
    },
  };
}

/** Opens a file, reading only its header; tensors are read on demand with positioned reads. */
export function openSafetensors(filePath: string): SafetensorsFile {
  let fd: number;
  try {
    fd = fs.openSync(filePath, 'r');
  } catch (e) {
    throw new SafetensorsError(filePath, `cannot open (${errorText(e)})`);
  }
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) throw new SafetensorsError(filePath, 'not a regular file');
    return makeFile(filePath, fileSource(fd, filePath, stat.size));
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}

/** Parses a file held in memory. readRaw() returns views into `bytes`; read() returns copies. */
export function parseSafetensors(bytes: Uint8Array, name = '<buffer>'): SafetensorsFile {
  return makeFile(name, bufferSource(bytes));
}

/** Reads every tensor of a file (converted to engine arrays). */
export function loadSafetensors(filePath: string): Map<string, LoadedTensor> {
  const file = openSafetensors(filePath);
  try {
    return new Map(file.keys().map((name) => [name, file.read(name)] as const));
  } finally {
    file.close();
  }
}
