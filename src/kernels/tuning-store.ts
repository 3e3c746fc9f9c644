/**
 * The autotuner's memory: per adapter, the configuration measured fastest for each kernel family
 * and shape class, kept in a cache the host provides (Node: a JSON file under XDG_CACHE_HOME or
 * ~/.cache/rae-webgpu/, see src/gpu/node.ts). The kernels consult it through tunedChoice(); the
 * measuring lives in autotune.ts.
 *
 * Off unless init() was given `tune: true` (Node env RAE_TUNE=1) or `retune: true` (ignore what is
 * cached and measure again): tests and anything that wants reproducible kernel choices get the
 * tuning table's rows. A cache that cannot be parsed, or that was written for another adapter,
 * driver or library version, is ignored with a warning and rewritten at the next choice.
 */
import type { TuningCacheStore } from '../gpu/platform.js';
import { runtime } from '../gpu/runtime.js';

/**
 * Part of the cache key: bump when a kernel family's candidates or generated code change in a way
 * that makes old measurements meaningless.
 */
export const TUNING_VERSION = 'rae-webgpu 0.1.0 tuning 1';

export interface TuningSettings {
  enabled: boolean;
  retune: boolean;
  store?: TuningCacheStore;
}

interface CacheFile {
  key: string;
  choices: Record<string, { choice: unknown; ms?: Record<string, number> }>;
}

interface State {
  rt: object;
  settings: TuningSettings;
  key: string;
  file: CacheFile;
  /** Shape classes asked for with no choice yet (autotune.ts's tunePending measures them). */
  pending: Set<string>;
}

let state: State | null = null;
let override: TuningSettings | null = null;

/** Replaces the runtime's tuning settings (tests: an in-memory store; null = back to init()'s). */
export function setTuningSettings(s: TuningSettings | null): void {
  override = s;
  state = null;
}

/** The cache key: adapter names (the description carries the driver version) and TUNING_VERSION. */
export function tuningKey(): string {
  const c = runtime().caps;
  return [c.vendor, c.architecture, c.device, c.description, TUNING_VERSION].join(' | ');
}

function current(): State {
  const rt = runtime();
  if (state?.rt === rt) return state;
  const settings = override ?? rt.tuningSettings;
  const key = tuningKey();
  state = { rt, settings, key, file: { key, choices: {} }, pending: new Set() };
  if (settings.enabled && !settings.retune && settings.store) state.file = load(settings.store, key);
  return state;
}

function load(store: TuningCacheStore, key: string): CacheFile {
  const empty = { key, choices: {} };
  let text: string | undefined;
  try {
    text = store.read(key);
  } catch (e) {
    console.warn(`rae-webgpu: cannot read the tuning cache ${store.where(key)} (${(e as Error).message}); measuring afresh`);
    return empty;
  }
  if (text === undefined) return empty;
  try {
    const f = JSON.parse(text) as CacheFile;
    if (typeof f !== 'object' || f === null || typeof f.choices !== 'object' || f.choices === null) throw new Error('no "choices" object');
    if (f.key !== key) throw new Error(`written for "${f.key}"`);
    return { key, choices: f.choices };
  } catch (e) {
    console.warn(`rae-webgpu: ignoring the tuning cache ${store.where(key)}: ${(e as Error).message}; it will be rewritten`);
    return empty;
  }
}

/** Whether tuning is on for the current runtime. */
export function tuningEnabled(): boolean {
  return current().settings.enabled;
}

/**
 * The tuned choice for a shape class (e.g. `row|softmax|D256xR4096`), or undefined: tuning off,
 * or not measured yet (the class is then remembered as pending). The caller validates the value.
 */
export function tunedChoice<T>(cls: string): T | undefined {
  const s = current();
  if (!s.settings.enabled) return undefined;
  const hit = s.file.choices[cls];
  if (hit === undefined) {
    s.pending.add(cls);
    return undefined;
  }
  return hit.choice as T;
}

/** Records a measured choice (with the candidates' times) and writes the cache. */
export function recordChoice(cls: string, choice: unknown, ms?: Record<string, number>): void {
  const s = current();
  s.file.choices[cls] = { choice, ms };
  s.pending.delete(cls);
  const store = s.settings.store;
  if (!store) return;
  try {
    store.write(s.key, `${JSON.stringify(s.file, null, 1)}\n`);
  } catch (e) {
    console.warn(`rae-webgpu: cannot write the tuning cache ${store.where(s.key)}: ${(e as Error).message}`);
  }
}

/** Whether a class has a recorded choice (in this process or from the cache). */
export function hasChoice(cls: string): boolean {
  return current().file.choices[cls] !== undefined;
}

/** Classes asked for without a choice, and forgets them. */
export function takePending(): string[] {
  const s = current();
  const out = [...s.pending];
  s.pending.clear();
  return out;
}
