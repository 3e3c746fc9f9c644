/**
 * Safetensors headers (https://github.com/huggingface/safetensors, format section): the types,
 * the error, and the validating parser. Layout: u64 little-endian header length N, N bytes of
 * UTF-8 JSON, then the data section. Every file is treated as hostile: the header is validated
 * completely before any tensor byte is touched, every failure is a SafetensorsError naming the
 * file, and nothing is allocated from a size the file declares before that size is checked
 * against the file's real size (the header itself is capped at 100 MB). No Node imports here:
 * the byte source is abstract.
 */
import { DTYPE_SIZE, SUPPORTED_DTYPES, isSafetensorsDType, type EngineTensorData, type SafetensorsDType } from './dtypes.js';

/** Same bound as the reference implementation: a larger header is treated as an attack. */
export const MAX_HEADER_BYTES = 100_000_000;
export const METADATA_KEY = '__metadata__';
export const INDEX_FILE = 'model.safetensors.index.json';
export const SINGLE_FILE = 'model.safetensors';

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
export type Fail = (problem: string) => SafetensorsError;

export const quote = (s: string): string => JSON.stringify(s);
export const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
export const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
export const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e));
/**
 * Short rendering of a hostile value for a message. Never JSON.stringify the whole value: it
 * may be megabytes long or nested deeply enough to overflow the stack.
 */
export function preview(v: unknown, depth = 0): string {
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
export function elementCount(shape: readonly number[]): number | undefined {
  if (shape.includes(0)) return 0;
  let product = 1n;
  for (const dim of shape) {
    product *= BigInt(dim);
    if (product > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  }
  return Number(product);
}

/** A valid header nests 3 deep (header → entry → shape); leave room for unknown extra fields. */
export const MAX_JSON_DEPTH = 16;

export function skipSpace(text: string, i: number): number {
  for (let c = text.charCodeAt(i); c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09; c = text.charCodeAt(++i));
  return i;
}

/** Index just past the string literal that opens at `start`, or -1 if it never closes. */
export function stringEnd(text: string, start: number): number {
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
export function forEachMember(text: string, what: string, fail: Fail, visit: (key: string, value: unknown) => void): void {
  const invalid = (why: string): SafetensorsError => fail(`${what} is not valid JSON (${why})`);
  const decode = (literal: string): string => {
    // biome-ignore lint/suspicious/noControlCharactersInRegex: JSON forbids raw control characters in strings; finding them is the point.
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
export interface ByteSource {
  readonly size: number;
  /** True when read() returns a fresh copy the caller may keep and reuse. */
  readonly owned: boolean;
  read(position: number, length: number): Uint8Array;
  close(): void;
}

export interface ParsedHeader {
  metadata: Record<string, string>;
  tensors: Map<string, TensorInfo>;
}

export function parseMetadata(value: unknown, fail: Fail): Record<string, string> {
  if (!isPlainObject(value)) throw fail(`${METADATA_KEY} must be an object of strings, got ${preview(value)}`);
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw fail(`${METADATA_KEY}[${quote(key)}] must be a string, got ${preview(v)}`);
  }
  // fromEntries defines own properties, so a "__proto__" key stays a plain key.
  return Object.fromEntries(Object.entries(value as Record<string, string>));
}

/** Validates one header entry against the format and the data section's size. */
export function parseEntry(name: string, entry: unknown, dataStart: number, dataLength: number, fail: Fail): TensorInfo {
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

export function parseHeader(label: string, src: ByteSource): ParsedHeader {
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
