/** Sharded checkpoints (`model.safetensors.index.json`) and Hugging Face snapshot directories. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openSafetensors } from './safetensors-read.js';
import {
  MAX_HEADER_BYTES,
  INDEX_FILE,
  SINGLE_FILE,
  SafetensorsError,
  type TensorSource,
  type SafetensorsFile,
  type Fail,
  quote,
  isPlainObject,
  errorText,
  preview,
  forEachMember,
} from './safetensors-header.js';

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
    indexPath,
    metadata,
    weightMap,
    shards,
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
