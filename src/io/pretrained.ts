/**
 * Loading weights from local files: Hugging Face snapshot directories (config.json +
 * model.safetensors, or sharded with model.safetensors.index.json) and plain safetensors state
 * dicts such as converted RAE checkpoints.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { openCheckpoint, openSafetensors, type TensorSource } from './safetensors.js';
import type { Module, StateValue } from '../nn/module.js';
import { Dinov2, Dinov2WithRegisters, type Dinov2Config } from '../models/dinov2.js';

/** Reads every tensor of a checkpoint into a state map, optionally stripping a key prefix. */
export function readState(source: TensorSource, stripPrefix?: string): Map<string, StateValue> {
  const state = new Map<string, StateValue>();
  for (const key of source.keys()) {
    const name = stripPrefix && key.startsWith(stripPrefix) ? key.slice(stripPrefix.length) : key;
    state.set(name, source.read(key));
  }
  return state;
}

/** Loads a safetensors file (or HF snapshot directory) into a module, strictly by default. */
export function loadWeights(model: Module, fileOrDir: string, opts: { strict?: boolean; stripPrefix?: string } = {}): void {
  const source = existsSync(fileOrDir) && !fileOrDir.endsWith('.safetensors') ? openCheckpoint(fileOrDir) : openSafetensors(fileOrDir);
  try {
    model.loadStateDict(readState(source, opts.stripPrefix), { strict: opts.strict ?? true });
  } finally {
    source.close();
  }
}

/**
 * A DINOv2 encoder from a local HF snapshot (`facebook/dinov2-with-registers-{small,base,large}`,
 * `facebook/dinov2-{small,base}`): the class follows config.json (registers or not), keys are HF's
 * own (a `dinov2.` prefix from task heads is stripped), and loading is strict.
 */
export function loadDinov2(dir: string): Dinov2 {
  const configPath = path.join(dir, 'config.json');
  if (!existsSync(configPath)) throw new Error(`loadDinov2: ${configPath} not found (expected a Hugging Face snapshot directory)`);
  let config: Dinov2Config;
  try {
    config = JSON.parse(readFileSync(configPath, 'utf8')) as Dinov2Config;
  } catch (e) {
    throw new Error(`loadDinov2: ${configPath} is not valid JSON: ${(e as Error).message}`);
  }
  const model =
    (config.num_register_tokens ?? 0) > 0 || config.model_type === 'dinov2_with_registers'
      ? Dinov2WithRegisters.fromConfig(config)
      : Dinov2.fromConfig(config);
  const source = openCheckpoint(dir);
  try {
    const prefixed = source.keys().some((k) => k.startsWith('dinov2.'));
    const state = readState(source, prefixed ? 'dinov2.' : undefined);
    // Task checkpoints carry heads (classifier, …) the encoder does not have.
    for (const k of [...state.keys()])
      if (!k.startsWith('embeddings.') && !k.startsWith('encoder.') && !k.startsWith('layernorm.')) state.delete(k);
    model.loadStateDict(state);
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    source.close();
  }
  return model.eval();
}
