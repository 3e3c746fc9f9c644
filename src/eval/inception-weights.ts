/**
 * The InceptionV3 that ships inside the npm package `nsfwjs` (MIT; a Keras 2.2.4 model
 * converted to the tfjs layers format, fine-tuned for another task): its layer graph and its
 * weights, dequantised to f32, for the engine's network builder.
 *
 * The package holds the model as UMD bundles (dist/models/inception_v3/model.min.js and
 * group1-shard{1..6}of6.min.js). They are read as text and their data parsed out — the model
 * object literal and each shard's one base64 string — without running any of the bundle code.
 *
 * Dequantisation is tfjs-core's (io_utils decodeWeights, 4.22): for a uint8-quantised tensor,
 * value = q · scale + min computed in float64 (JavaScript numbers) and rounded once to f32 on
 * the store into a Float32Array. Tensors lie back to back in manifest order in the
 * concatenation of the shards, one byte per element.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { type JsValue, longStringLiterals, parseJsLiteral } from './js-literal.js';

export const NSFWJS_VERSION = '4.4.0';
const INSTALL = `npm i nsfwjs@${NSFWJS_VERSION}`;

export interface KerasLayer {
  name: string;
  /** Keras class: Conv2D, BatchNormalization, Activation, MaxPooling2D, AveragePooling2D, Concatenate, … */
  className: string;
  config: Record<string, JsValue>;
  /** Names of the layers feeding this one, in order (the order of a Concatenate's inputs). */
  inbound: string[];
}

export interface NamedTensor {
  shape: number[];
  data: Float32Array;
}

export interface NsfwjsInception {
  packageDir: string;
  version: string;
  /** Layers in the model file's order (a topological order). */
  layers: KerasLayer[];
  inputLayers: string[];
  outputLayers: string[];
  /** Keras weight names ("conv2d_1/kernel": HWIO; "batch_normalization_1/beta", …), manifest order. */
  weights: Map<string, NamedTensor>;
  /** SHA-256 of the weight manifest (JSON) and the quantised bytes: names this network in a stats cache key. */
  weightsSha256: string;
}

interface WeightSpec {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: string; min: number; scale: number };
}

export class InceptionWeightsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InceptionWeightsError';
  }
}

/** The installed nsfwjs package folder and version; an error with the install command if absent. */
export function locateNsfwjs(from: string = import.meta.url): { dir: string; version: string } {
  let entry: string;
  try {
    entry = createRequire(from).resolve('nsfwjs');
  } catch {
    throw new InceptionWeightsError(`the InceptionV3 weights come from the npm package nsfwjs, which is not installed: run \`${INSTALL}\``);
  }
  // The package's exports map hides package.json from resolve(); walk up from its entry point.
  for (let dir = path.dirname(entry); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (!existsSync(manifest)) continue;
    const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string; version?: string };
    if (pkg.name === 'nsfwjs') return { dir, version: pkg.version ?? 'unknown' };
  }
  throw new InceptionWeightsError(`found nsfwjs at ${entry} but not its package.json; reinstall it: \`${INSTALL}\``);
}

function readBundle(file: string): string {
  if (!existsSync(file))
    throw new InceptionWeightsError(`${file} is missing (nsfwjs ${NSFWJS_VERSION} ships it; reinstall: \`${INSTALL}\`)`);
  return readFileSync(file, 'utf8');
}

/** The object literal assigned to `exports` in model.min.js. */
function modelLiteral(file: string): Record<string, JsValue> {
  const text = readBundle(file);
  for (let at = text.indexOf('exports='); at >= 0; at = text.indexOf('exports=', at + 1)) {
    const start = at + 'exports='.length;
    if (text[start] !== '{') continue; // the UMD wrapper's own `module.exports=a()`
    const { value } = parseJsLiteral(text, start, file);
    const obj = value as Record<string, JsValue>;
    if (obj && typeof obj === 'object' && 'modelTopology' in obj && 'weightsManifest' in obj) return obj;
  }
  throw new InceptionWeightsError(`${file}: no model object (modelTopology + weightsManifest) found; is this nsfwjs ${NSFWJS_VERSION}?`);
}

/** The one long base64 string of a shard bundle, decoded. */
function shardBytes(file: string): Uint8Array {
  const strings = longStringLiterals(readBundle(file), 1024);
  const payloads = strings.filter((s) => /^[A-Za-z0-9+/]*={0,2}$/.test(s.value));
  if (payloads.length !== 1) throw new InceptionWeightsError(`${file}: expected one base64 weight string, found ${payloads.length}`);
  const b64 = payloads[0].value;
  if (b64.length % 4 !== 0)
    throw new InceptionWeightsError(`${file}: base64 weight string has length ${b64.length}, not a multiple of 4 (truncated?)`);
  const buf = Buffer.from(b64, 'base64');
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

function layersOf(topology: Record<string, JsValue>): { layers: KerasLayer[]; inputs: string[]; outputs: string[] } {
  const modelConfig = (topology.model_config as Record<string, JsValue>)?.config as Record<string, JsValue> | undefined;
  const raw = modelConfig?.layers;
  if (!Array.isArray(raw)) throw new InceptionWeightsError('nsfwjs model: modelTopology.model_config.config.layers is missing');
  const layers = raw.map((entry): KerasLayer => {
    const l = entry as Record<string, JsValue>;
    const nodes = (l.inbound_nodes ?? []) as JsValue[][][];
    // Keras 2.2 inbound_nodes: [[[layerName, nodeIndex, tensorIndex, kwargs], …]] — one call per layer here.
    if (nodes.length > 1)
      throw new InceptionWeightsError(
        `nsfwjs model: layer ${String(l.name)} is called ${nodes.length} times; shared layers are not expected`,
      );
    return {
      name: String(l.name),
      className: String(l.class_name),
      config: l.config as Record<string, JsValue>,
      inbound: nodes.length ? nodes[0].map((n) => String(n[0])) : [],
    };
  });
  const names = (list: JsValue): string[] => (list as JsValue[][]).map((n) => String(n[0]));
  return { layers, inputs: names(modelConfig?.input_layers ?? []), outputs: names(modelConfig?.output_layers ?? []) };
}

/** Loads graph and weights of nsfwjs's InceptionV3 (`packageDir` defaults to the installed package). */
export function loadNsfwjsInception(packageDir?: string): NsfwjsInception {
  const located = packageDir ? { dir: packageDir, version: readPackageVersion(packageDir) } : locateNsfwjs();
  const modelDir = path.join(located.dir, 'dist', 'models', 'inception_v3');
  const model = modelLiteral(path.join(modelDir, 'model.min.js'));
  const { layers, inputs, outputs } = layersOf(model.modelTopology as Record<string, JsValue>);
  const groups = manifestOf(model.weightsManifest);
  const hash = createHash('sha256');
  hash.update(JSON.stringify(groups));
  const weights = new Map<string, NamedTensor>();
  for (const group of groups) {
    const shards = group.paths.map((p) => shardBytes(path.join(modelDir, `${p}.min.js`)));
    const total = shards.reduce((n, s) => n + s.length, 0);
    const bytes = new Uint8Array(total);
    let at = 0;
    for (const s of shards) {
      bytes.set(s, at);
      at += s.length;
    }
    hash.update(bytes);
    let offset = 0;
    for (const spec of group.weights) {
      const count = spec.shape.reduce((a, b) => a * b, 1);
      const q = spec.quantization;
      if (spec.dtype !== 'float32' || !q || q.dtype !== 'uint8' || typeof q.min !== 'number' || typeof q.scale !== 'number') {
        throw new InceptionWeightsError(
          `nsfwjs model: weight ${spec.name} is ${spec.dtype} with quantization ${JSON.stringify(q)}; only uint8-quantised float32 is expected`,
        );
      }
      if (offset + count > bytes.length)
        throw new InceptionWeightsError(
          `nsfwjs model: weight ${spec.name} ends at byte ${offset + count} but the shards hold ${bytes.length}`,
        );
      const data = new Float32Array(count);
      for (let i = 0; i < count; i++) data[i] = bytes[offset + i] * q.scale + q.min;
      if (weights.has(spec.name)) throw new InceptionWeightsError(`nsfwjs model: weight ${spec.name} appears twice in the manifest`);
      weights.set(spec.name, { shape: spec.shape.slice(), data });
      offset += count;
    }
    if (offset !== bytes.length)
      throw new InceptionWeightsError(`nsfwjs model: the manifest accounts for ${offset} bytes but the shards hold ${bytes.length}`);
  }
  return {
    packageDir: located.dir,
    version: located.version,
    layers,
    inputLayers: inputs,
    outputLayers: outputs,
    weights,
    weightsSha256: hash.digest('hex'),
  };
}

/** The weight manifest, its structure checked (names, shapes) before any byte is read by it. */
function manifestOf(value: JsValue): Array<{ paths: string[]; weights: WeightSpec[] }> {
  const bad = (what: string): never => {
    throw new InceptionWeightsError(`nsfwjs model: weightsManifest ${what}`);
  };
  if (!Array.isArray(value)) return bad('is not an array');
  return value.map((g, i) => {
    const group = g as { paths?: unknown; weights?: unknown };
    if (!Array.isArray(group.paths) || !group.paths.every((p) => typeof p === 'string' && /^[\w.-]+$/.test(p)))
      bad(`group ${i}: paths must be plain file names`);
    if (!Array.isArray(group.weights)) return bad(`group ${i}: weights is not an array`);
    for (const w of group.weights as WeightSpec[]) {
      if (typeof w?.name !== 'string' || !Array.isArray(w.shape) || !w.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
        bad(`group ${i}: entry ${JSON.stringify(w).slice(0, 80)} needs a name and a shape of non-negative integers`);
      }
    }
    return { paths: group.paths as string[], weights: group.weights as WeightSpec[] };
  });
}

function readPackageVersion(dir: string): string {
  const manifest = path.join(dir, 'package.json');
  if (!existsSync(manifest))
    throw new InceptionWeightsError(`${dir} has no package.json; is it the nsfwjs package folder? (install: \`${INSTALL}\`)`);
  return String((JSON.parse(readFileSync(manifest, 'utf8')) as { version?: string }).version ?? 'unknown');
}
