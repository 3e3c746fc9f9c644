/**
 * Safetensors reader and writer (https://github.com/huggingface/safetensors, format section).
 *
 * Layout: u64 little-endian header length N, N bytes of UTF-8 JSON, then the data section.
 * The reader treats every file as hostile: the header is validated completely before any tensor
 * byte is touched, every failure is a SafetensorsError naming the file, and nothing is
 * allocated from a size the file declares before that size is checked against the file's real
 * size (the header itself is capped at 100 MB). Files are read lazily with positioned reads,
 * one tensor at a time.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  DTYPE_SIZE, SUPPORTED_DTYPES, decodeTensor, defaultDType, encodeTensor, isSafetensorsDType,
  type EngineTensorData, type SafetensorsDType, type WritableArray,
} from './dtypes.js';

export type { SafetensorsDType, EngineTensorData, WritableArray } from './dtypes.js';
export { f16BitsToF32, f32ToF16Bits, bf16BitsToF32, f32ToBf16Bits } from './dtypes.js';

/** Same bound as the reference implementation: a larger header is treated as an attack. */
export const MAX_HEADER_BYTES = 100_000_000;
const METADATA_KEY = '__metadata__';
const INDEX_FILE = 'model.safetensors.index.json';
const SINGLE_FILE = 'model.safetensors';

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** Absolute position of the tensor's first byte in the file (or buffer). */
  byteOffset: number;
  byteLength: number;
}

export type LoadedTensor = EngineTensorData & { shape: number[] };

export class SafetensorsError extends Error {
  readonly file: string;
  constructor(file: string, problem: string) {
    super(`${file}: ${problem}`);
    this.name = 'SafetensorsError';
    this.file = file;
  }
}

/** What single files, sharded checkpoints and openCheckpoint() all provide. */
export interface TensorSource {
  metadata: Record<string, string>;
  /** Tensor names, sorted. */
  keys(): string[];
  has(name: string): boolean;
  info(name: string): TensorInfo;
  /** The tensor's bytes exactly as stored (little-endian, its own dtype: see info(name).dtype). */
  readRaw(name: string): Uint8Array;
  read(name: string): LoadedTensor;
  close(): void;
}

export interface SafetensorsFile extends TensorSource {
  path: string;
  tensors: Map<string, TensorInfo>;
}

/** Makes the error for a problem; callers throw it (so control flow stays visible). */
type Fail = (problem: string) => SafetensorsError;

const quote = (s: string): string => JSON.stringify(s);
const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e));
/**
 * Short rendering of a hostile value for a message. Never JSON.stringify the whole value: it
 * may be megabytes long or nested deeply enough to overflow the stack.
 */
function preview(v: unknown, depth = 0): string {
  let s: string;
  if (Array.isArray(v)) {
    const items = depth > 1 ? ['...'] : v.slice(0, 8).map((x) => preview(x, depth + 1));
    s = `[${items.join(',')}${v.length > 8 && depth <= 1 ? ',...' : ''}]`;
  } else if (isPlainObject(v)) s = '{...}';
  else if (typeof v === 'string') s = JSON.stringify(v.slice(0, 80));
  else s = String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/**
 * Number of elements of `shape`, computed exactly. Undefined when it exceeds
 * Number.MAX_SAFE_INTEGER (a zero dimension anywhere makes it 0 whatever the others are).
 * Stops multiplying as soon as the bound is passed, so a hostile shape with millions of huge
 * dimensions cannot make the BigInt product itself slow.
 */
function elementCount(shape: readonly number[]): number | undefined {
  if (shape.includes(0)) return 0;
  let product = 1n;
  for (const dim of shape) {
    product *= BigInt(dim);
    if (product > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  }
  return Number(product);
}

/** A valid header nests 3 deep (header → entry → shape); leave room for unknown extra fields. */
const MAX_JSON_DEPTH = 16;

function skipSpace(text: string, i: number): number {
  for (let c = text.charCodeAt(i); c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09; c = text.charCodeAt(++i));
  return i;
}

/** Index just past the string literal that opens at `start`, or -1 if it never closes. */
function stringEnd(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i += text.charCodeAt(i) === 0x5c ? 2 : 1) {
    if (text.charCodeAt(i) === 0x22) return i + 1;
  }
  return -1;
}

/**
 * Parses a JSON object member by member, handing each key and parsed value to `visit`.
 * Why not JSON.parse(text)? A 100 MB header of a million tiny entries becomes a dictionary-mode
 * object that costs V8 ~15 s and over a gigabyte; member by member, each entry is garbage once
 * visited. It also adds checks JSON.parse lacks: nesting depth is capped, and keys repeated in
 * the object or in a member object are refused (JSON.parse silently keeps the last, other
 * readers may keep the first, so two tools could disagree on what a file holds). Repeats
 * deeper down, inside fields this reader ignores, are not looked for.
 */
function forEachMember(text: string, what: string, fail: Fail, visit: (key: string, value: unknown) => void): void {
  const invalid = (why: string): SafetensorsError => fail(`${what} is not valid JSON (${why})`);
  const decode = (literal: string): string => {
    if (!/[\\\x00-\x1f]/.test(literal)) return literal.slice(1, -1); // nothing to unescape or reject
    try {
      return JSON.parse(literal) as string;
    } catch (e) {
      throw invalid(`${preview(errorText(e))}`);
    }
  };
  const seen = new Set<string>();
  let i = skipSpace(text, 0);
  if (text.charCodeAt(i) !== 0x7b) throw fail(`${what} is not a JSON object`);
  i = skipSpace(text, i + 1);
  let more = true;
  if (text.charCodeAt(i) === 0x7d) {
    more = false; // empty object
    i++;
  }
  while (more) {
    const keyEnd = text.charCodeAt(i) === 0x22 ? stringEnd(text, i) : -1;
    if (keyEnd < 0) throw invalid(`expected a key string at character ${i}`);
    const key = decode(text.slice(i, keyEnd));
    i = skipSpace(text, keyEnd);
    if (text.charCodeAt(i) !== 0x3a) throw invalid(`expected ':' at character ${i}`);
    // The value ends at the first ',' or '}' outside strings and brackets.
    const start = i + 1;
    const memberKeys: string[] = []; // key literals of the value itself, if it is an object
    let depth = 0;
    for (i = start; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        const end = stringEnd(text, i);
        if (end < 0) throw invalid('unterminated string');
        if (depth === 1 && text.charCodeAt(skipSpace(text, end)) === 0x3a) memberKeys.push(text.slice(i, end));
        i = end - 1;
      } else if (c === 0x7b || c === 0x5b) {
        if (++depth >= MAX_JSON_DEPTH) throw fail(`${what} nests deeper than ${MAX_JSON_DEPTH} levels`);
      } else if (c === 0x7d || c === 0x5d) {
        if (depth === 0) break;
        depth--;
      } else if (c === 0x2c && depth === 0) break;
    }
    let value: unknown;
    try {
      value = JSON.parse(text.slice(start, i));
    } catch (e) {
      throw invalid(`in the value of ${preview(key)}: ${preview(errorText(e))}`);
    }
    if (seen.has(key)) throw fail(`${what} repeats the key ${preview(key)}`);
    seen.add(key);
    if (isPlainObject(value) && Object.keys(value).length !== memberKeys.length) {
      const keys = memberKeys.map(decode);
      throw fail(`${what}: ${preview(key)} repeats the key ${preview(keys.find((k, j) => keys.indexOf(k) !== j))}`);
    }
    visit(key, value);
    const c = text.charCodeAt(i);
    if (c !== 0x2c && c !== 0x7d) throw invalid(`expected ',' or '}' at character ${i}`);
    more = c === 0x2c;
    i = more ? skipSpace(text, i + 1) : i + 1;
  }
  if (skipSpace(text, i) < text.length) throw invalid(`unexpected text after the object at character ${i}`);
}

/** Random access to a file or an in-memory buffer. */
interface ByteSource {
  readonly size: number;
  /** True when read() returns a fresh copy the caller may keep and reuse. */
  readonly owned: boolean;
  read(position: number, length: number): Uint8Array;
  close(): void;
}

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

interface ParsedHeader {
  metadata: Record<string, string>;
  tensors: Map<string, TensorInfo>;
}

function parseMetadata(value: unknown, fail: Fail): Record<string, string> {
  if (!isPlainObject(value)) throw fail(`${METADATA_KEY} must be an object of strings, got ${preview(value)}`);
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw fail(`${METADATA_KEY}[${quote(key)}] must be a string, got ${preview(v)}`);
  }
  // fromEntries defines own properties, so a "__proto__" key stays a plain key.
  return Object.fromEntries(Object.entries(value as Record<string, string>));
}

/** Validates one header entry against the format and the data section's size. */
function parseEntry(name: string, entry: unknown, dataStart: number, dataLength: number, fail: Fail): TensorInfo {
  if (name === '') throw fail('a tensor has an empty name');
  const where = `tensor ${preview(name)}`;
  if (!isPlainObject(entry)) throw fail(`${where}: entry is not an object, got ${preview(entry)}`);
  const missing = ['dtype', 'shape', 'data_offsets'].filter((k) => !Object.hasOwn(entry, k));
  if (missing.length > 0) throw fail(`${where}: missing ${missing.join(', ')}`);
  const { dtype, shape, data_offsets: offsets } = entry;
  if (!isSafetensorsDType(dtype)) {
    throw fail(`${where}: unsupported dtype ${preview(dtype)} (supported: ${SUPPORTED_DTYPES.join(', ')})`);
  }
  if (!Array.isArray(shape) || !shape.every(isCount)) {
    throw fail(`${where}: shape must be an array of non-negative integers, got ${preview(shape)}`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
    throw fail(`${where}: data_offsets must be two non-negative integers, got ${preview(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) throw fail(`${where}: data_offsets begin ${begin} is after end ${end}`);
  if (end > dataLength) {
    throw fail(`${where}: data_offsets [${begin}, ${end}] run past the end of the data section (${dataLength} bytes)`);
  }
  const count = elementCount(shape);
  const expected = count === undefined ? undefined : count * DTYPE_SIZE[dtype];
  if (expected === undefined || !Number.isSafeInteger(expected)) {
    throw fail(`${where}: shape ${preview(shape)} is too large (size overflows)`);
  }
  if (end - begin !== expected) {
    throw fail(`${where}: data_offsets span ${end - begin} bytes but shape ${preview(shape)} of ${dtype} needs ${expected}`);
  }
  // `+ 0` turns a JSON -0 into 0.
  return { name, dtype, shape: shape.map((d) => d + 0), byteOffset: dataStart + begin, byteLength: expected };
}

function parseHeader(label: string, src: ByteSource): ParsedHeader {
  const fail = (problem: string): SafetensorsError => new SafetensorsError(label, problem);
  if (src.size < 8) throw fail(`file is ${src.size} bytes, shorter than the 8-byte header length`);
  const prefix = src.read(0, 8);
  const declared = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (declared > BigInt(MAX_HEADER_BYTES)) throw fail(`header length ${declared} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  const headerLength = Number(declared);
  if (8 + headerLength > src.size) {
    throw fail(`header length ${headerLength} runs past the end of the file (${src.size} bytes)`);
  }
  const headerBytes = src.read(8, headerLength);
  if (headerBytes[0] !== 0x7b) throw fail(`header does not start with '{'`);

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    throw fail('header is not valid UTF-8');
  }
  const dataStart = 8 + headerLength;
  const dataLength = src.size - dataStart;
  let metadata: Record<string, string> = {};
  const tensors = new Map<string, TensorInfo>();
  forEachMember(text, 'header', fail, (name, entry) => {
    if (name === METADATA_KEY) metadata = parseMetadata(entry, fail);
    else tensors.set(name, parseEntry(name, entry, dataStart, dataLength, fail));
  });

  // The format requires the tensors to tile the data section exactly: no holes (which could
  // hide a second payload, a "polyglot" file) and no overlaps (aliased tensors).
  const spans = [...tensors.values()].sort((a, b) => a.byteOffset - b.byteOffset || a.byteLength - b.byteLength);
  let covered = 0; // relative to the data section, like data_offsets
  for (const { name, byteOffset, byteLength } of spans) {
    const begin = byteOffset - dataStart;
    if (begin > covered) throw fail(`gap in the data section: bytes ${covered}..${begin} belong to no tensor`);
    if (begin < covered) throw fail(`tensor ${preview(name)} overlaps the previous tensor (starts at ${begin}, before ${covered})`);
    covered = begin + byteLength;
  }
  if (covered !== dataLength) throw fail(`data section has ${dataLength - covered} trailing bytes that belong to no tensor`);
  return { metadata, tensors };
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

// ---------------------------------------------------------------------------------------------
// Writing

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
    if (!Array.isArray(t.shape) || !t.shape.every(isCount)) throw fail(`${where}: shape must be non-negative integers, got ${preview(t.shape)}`);
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

// ---------------------------------------------------------------------------------------------
// Sharded checkpoints and Hugging Face snapshot directories

export interface ShardedSafetensors extends TensorSource {
  indexPath: string;
  /** Tensor name → shard file name, as listed in the index. */
  weightMap: Map<string, string>;
  shards: Map<string, SafetensorsFile>;
}

function parseWeightMap(value: unknown, dir: string, fail: Fail): Map<string, string> {
  if (!isPlainObject(value)) throw fail(`"weight_map" must be an object, got ${preview(value)}`);
  const weightMap = new Map<string, string>();
  for (const [name, shard] of Object.entries(value)) {
    if (name === '') throw fail('weight_map has an empty tensor name');
    if (typeof shard !== 'string' || shard === '') throw fail(`weight_map[${quote(name)}] must be a file name, got ${preview(shard)}`);
    // Shards live next to the index; refuse paths that would read elsewhere.
    const relative = path.relative(dir, path.resolve(dir, shard));
    if (path.isAbsolute(shard) || relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) {
      throw fail(`weight_map[${quote(name)}] = ${preview(shard)} points outside the checkpoint directory`);
    }
    weightMap.set(name, shard);
  }
  return weightMap;
}

function readIndex(indexPath: string): { metadata: Record<string, string>; weightMap: Map<string, string> } {
  const fail = (problem: string): SafetensorsError => new SafetensorsError(indexPath, problem);
  let text: string;
  try {
    const size = fs.statSync(indexPath).size;
    if (size > MAX_HEADER_BYTES) throw fail(`index is ${size} bytes, over the ${MAX_HEADER_BYTES}-byte limit`);
    text = new TextDecoder('utf-8', { fatal: true }).decode(fs.readFileSync(indexPath));
  } catch (e) {
    throw e instanceof SafetensorsError ? e : fail(`cannot read index (${errorText(e)})`);
  }
  let metadata: Record<string, string> = {};
  let weightMap: Map<string, string> | undefined;
  forEachMember(text, 'index', fail, (key, value) => {
    if (key === 'metadata') {
      if (!isPlainObject(value)) throw fail(`"metadata" must be an object, got ${preview(value)}`);
      // Hugging Face indexes hold numbers here (total_size); keep one metadata type for every
      // TensorSource by rendering non-string values as JSON text.
      metadata = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]));
    } else if (key === 'weight_map') {
      weightMap = parseWeightMap(value, path.dirname(indexPath), fail);
    }
  });
  if (weightMap === undefined) throw fail('index has no "weight_map"');
  return { metadata, weightMap };
}

/** stat() that treats any failure (missing, permission) as "not there"; opening reports the cause. */
function statOrUndefined(p: string): fs.Stats | undefined {
  try {
    return fs.statSync(p);
  } catch {
    return undefined;
  }
}

/** Opens `model.safetensors.index.json` (or a directory holding it) and every shard it names. */
export function openShardedSafetensors(dirOrIndexPath: string): ShardedSafetensors {
  const isDir = statOrUndefined(dirOrIndexPath)?.isDirectory() ?? false;
  const indexPath = isDir ? path.join(dirOrIndexPath, INDEX_FILE) : dirOrIndexPath;
  const { metadata, weightMap } = readIndex(indexPath);
  const dir = path.dirname(indexPath);
  const shards = new Map<string, SafetensorsFile>();
  const closeAll = (): void => shards.forEach((s) => s.close());
  try {
    for (const shard of [...new Set(weightMap.values())].sort()) {
      const shardPath = path.join(dir, shard);
      if (!fs.existsSync(shardPath)) throw new SafetensorsError(indexPath, `shard ${quote(shard)} does not exist (${shardPath})`);
      shards.set(shard, openSafetensors(shardPath));
    }
    for (const [name, shard] of weightMap) {
      if (!shards.get(shard)!.has(name)) {
        throw new SafetensorsError(indexPath, `weight_map puts ${preview(name)} in ${quote(shard)}, which has no such tensor`);
      }
    }
  } catch (e) {
    closeAll();
    throw e;
  }
  const names = [...weightMap.keys()].sort();
  const shardOf = (name: string): SafetensorsFile => {
    const shard = weightMap.get(name);
    if (shard === undefined) throw new SafetensorsError(indexPath, `no tensor named ${preview(name)}`);
    return shards.get(shard)!;
  };
  return {
    indexPath, metadata, weightMap, shards,
    keys: () => names.slice(),
    has: (name) => weightMap.has(name),
    info: (name) => shardOf(name).info(name),
    readRaw: (name) => shardOf(name).readRaw(name),
    read: (name) => shardOf(name).read(name),
    close: closeAll,
  };
}

/**
 * Opens a checkpoint: a Hugging Face snapshot directory holding `model.safetensors` or
 * `model.safetensors.index.json` (the single file wins if both exist), or such a file directly.
 */
export function openCheckpoint(dir: string): TensorSource {
  const stat = statOrUndefined(dir);
  if (stat?.isFile()) return dir.endsWith('.json') ? openShardedSafetensors(dir) : openSafetensors(dir);
  const single = path.join(dir, SINGLE_FILE);
  const index = path.join(dir, INDEX_FILE);
  if (statOrUndefined(single)?.isFile()) return openSafetensors(single);
  if (statOrUndefined(index)?.isFile()) return openShardedSafetensors(index);
  const why = stat ? 'found neither' : 'directory does not exist; looked for';
  throw new SafetensorsError(dir, `no checkpoint: ${why} ${single} or ${index}`);
}
