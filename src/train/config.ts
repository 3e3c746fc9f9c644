/**
 * The one configuration of a training run: a zod schema (what `config.json` holds), the presets
 * it starts from, deep merging of overrides, and the fingerprints that tie checkpoints to the
 * model-shaping fields.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';

const int = (min = 1) => z.number().int().min(min);
const pos = () => z.number().positive();

const DataSchema = z.strictObject({
  source: z.string(),
  format: z.enum(['auto', 'folder', 'archive', 'cifar10-bin', 'idx']),
  imageSize: int(8),
  maxImages: int(1).optional(),
  heldOut: int(1),
  skipBad: z.boolean(),
  flip: z.boolean(),
});

/** A randomly initialised DINOv2-with-registers (no pretrained weights can be fetched offline). */
const EncoderSchema = z.strictObject({
  /** Local HF snapshot of facebook/dinov2-with-registers-*; empty → the random encoder below. */
  path: z.string(),
  inputSize: int(8),
  hidden: int(),
  layers: int(),
  heads: int(),
  patch: int(),
  registers: int(1),
});

const DecoderSchema = z.strictObject({
  hidden: int(),
  layers: int(),
  heads: int(),
  mlp: int(),
  steps: int(),
  batch: int(),
  lr: pos(),
  finalLr: z.number().min(0),
  warmupFraction: z.number().min(0).max(1),
  /** Noise augmentation strength τ; 0 switches it off. */
  tau: z.number().min(0),
  /** σ per sample: 'uniform' = τ·U(0,1) (reference code), 'half-normal' = |N(0, τ²)| (paper). */
  noise: z.enum(['uniform', 'half-normal']),
  /** Feature loss through the frozen encoder (LPIPS needs VGG weights, unavailable offline). */
  perceptual: z.enum(['none', 'l2', 'cosine']),
  perceptualWeight: z.number().min(0),
  ema: z.number().min(0).max(1),
  logEvery: int(),
  evalEvery: int(),
  evalImages: int(),
  checkpointEvery: int(),
  keep: int(),
});

const DiTSchema = z.strictObject({
  kind: z.enum(['dit', 'ditdh']),
  /** DiT: [width]; DiT^DH: [body, head] (same for depth and heads). */
  hidden: z.array(int()).min(1).max(2),
  depth: z.array(int()).min(1).max(2),
  heads: z.array(int()).min(1).max(2),
  mlpRatio: pos(),
  allowNarrow: z.boolean(),
  steps: int(),
  batch: int(),
  lr: pos(),
  finalLr: z.number().min(0),
  /** Hold the LR for this fraction of the steps, then decay linearly until decayEndFraction. */
  holdFraction: z.number().min(0).max(1),
  decayEndFraction: z.number().min(0).max(1),
  ema: z.number().min(0).max(1),
  clip: z.number().min(0),
  labelDropout: z.number().min(0).max(1),
  timeDist: z.enum(['uniform', 'logit-normal']),
  shift: z.boolean(),
  /** α = √(m / shiftBase), m = C·h·w of the latent. */
  shiftBase: pos(),
  /** Encode the training set once (with mirrored copies) into DIR/token-cache instead of every step. */
  tokenCache: z.boolean(),
  logEvery: int(),
  checkpointEvery: int(),
  keep: int(),
});

const SampleSchema = z.strictObject({
  sampler: z.enum(['euler', 'heun']),
  steps: int(),
  count: int(),
  guidance: z.enum(['none', 'cfg', 'auto']),
  scale: z.number(),
  interval: z.tuple([z.number(), z.number()]),
  /** AutoGuidance: a checkpoint folder of a weaker DiT (e.g. an earlier step of this run). */
  guide: z.string(),
  useEma: z.boolean(),
});

/** MAE pretraining of an encoder of our own (`rae pretrain-encoder`); the input size is data.imageSize. */
const MaeSchema = z.strictObject({
  patch: int(),
  hidden: int(),
  layers: int(),
  heads: int(),
  mlpRatio: pos(),
  decoderHidden: int(),
  decoderLayers: int(),
  decoderHeads: int(),
  maskRatio: z.number().gt(0).lt(1),
  steps: int(),
  batch: int(),
  lr: pos(),
  finalLr: z.number().min(0),
  warmupFraction: z.number().min(0).max(1),
  weightDecay: z.number().min(0),
  logEvery: int(),
  checkpointEvery: int(),
  keep: int(),
});
export type MaeSection = z.infer<typeof MaeSchema>;

export const PRESETS = ['tiny', 'cpu', 'gpu-s', 'gpu-b'] as const;
export type PresetName = (typeof PRESETS)[number];

export const ConfigSchema = z.strictObject({
  preset: z.enum(PRESETS),
  seed: z.number().int().min(0),
  data: DataSchema,
  encoder: EncoderSchema,
  decoder: DecoderSchema,
  dit: DiTSchema,
  sample: SampleSchema,
  mae: MaeSchema,
});
export type RunConfig = z.infer<typeof ConfigSchema>;

type Deep<T> = { [K in keyof T]?: T[K] extends object ? (T[K] extends unknown[] ? T[K] : Deep<T[K]>) : T[K] };
export type ConfigPatch = Deep<RunConfig>;

const CPU: RunConfig = {
  preset: 'cpu',
  seed: 0,
  data: { source: '', format: 'auto', imageSize: 32, maxImages: 640, heldOut: 32, skipBad: false, flip: true },
  encoder: { path: '', inputSize: 32, hidden: 64, layers: 2, heads: 4, patch: 4, registers: 4 },
  decoder: {
    hidden: 96,
    layers: 2,
    heads: 4,
    mlp: 384,
    steps: 150,
    batch: 32,
    lr: 1e-3,
    finalLr: 1e-4,
    warmupFraction: 1 / 16,
    tau: 0.8,
    noise: 'uniform',
    perceptual: 'none',
    perceptualWeight: 0.1,
    ema: 0.98,
    logEvery: 10,
    evalEvery: 50,
    evalImages: 16,
    checkpointEvery: 50,
    keep: 2,
  },
  dit: {
    kind: 'ditdh',
    hidden: [96, 128],
    depth: [2, 1],
    heads: [4, 4],
    mlpRatio: 4,
    allowNarrow: false,
    steps: 150,
    batch: 32,
    lr: 5e-4,
    finalLr: 5e-5,
    holdFraction: 0.5,
    decayEndFraction: 1,
    ema: 0.99,
    clip: 1,
    labelDropout: 0.1,
    timeDist: 'uniform',
    shift: true,
    shiftBase: 4096,
    tokenCache: true,
    logEvery: 10,
    checkpointEvery: 50,
    keep: 3,
  },
  sample: { sampler: 'euler', steps: 20, count: 40, guidance: 'cfg', scale: 2, interval: [0, 1], guide: '', useEma: true },
  // The demo's encoder: same latent shape as the random encoder it replaces (8×8 tokens × 64).
  // Linear probe (2000/1000 CIFAR-10 images, mean-pooled tokens): 300 steps with a 64-wide
  // decoder 37.8% vs 34.3% at random init; 200 steps with a 32-wide decoder only 34.7%.
  mae: {
    patch: 4,
    hidden: 64,
    layers: 2,
    heads: 4,
    mlpRatio: 4,
    decoderHidden: 64,
    decoderLayers: 1,
    decoderHeads: 4,
    maskRatio: 0.75,
    steps: 300,
    batch: 64,
    lr: 1.5e-3,
    finalLr: 1e-5,
    warmupFraction: 0.05,
    weightDecay: 0.05,
    logEvery: 10,
    checkpointEvery: 100,
    keep: 2,
  },
};

const PRESET_PATCHES: Record<PresetName, ConfigPatch> = {
  cpu: {},
  tiny: {
    preset: 'tiny',
    data: { imageSize: 16, maxImages: 24, heldOut: 4, flip: true },
    encoder: { inputSize: 16, hidden: 16, layers: 1, heads: 2, patch: 4, registers: 1 },
    decoder: { hidden: 16, layers: 1, heads: 2, mlp: 32, steps: 6, batch: 4, logEvery: 1, evalEvery: 3, evalImages: 4, checkpointEvery: 2 },
    dit: { hidden: [16, 16], depth: [1, 1], heads: [2, 2], steps: 6, batch: 4, logEvery: 1, checkpointEvery: 2 },
    sample: { steps: 3, count: 4 },
    mae: {
      hidden: 16,
      layers: 1,
      heads: 2,
      decoderHidden: 16,
      decoderLayers: 1,
      decoderHeads: 2,
      steps: 6,
      batch: 4,
      logEvery: 1,
      checkpointEvery: 2,
    },
  },
  'gpu-s': {
    preset: 'gpu-s',
    data: { imageSize: 64, maxImages: 50000, heldOut: 256 },
    encoder: { inputSize: 64, hidden: 384, layers: 6, heads: 6, patch: 8, registers: 4 },
    decoder: {
      hidden: 384,
      layers: 6,
      heads: 6,
      mlp: 1536,
      steps: 5000,
      batch: 64,
      lr: 2e-4,
      finalLr: 2e-5,
      ema: 0.9978,
      logEvery: 50,
      evalEvery: 500,
      checkpointEvery: 1000,
    },
    dit: {
      hidden: [384, 2048],
      depth: [12, 2],
      heads: [6, 16],
      steps: 20000,
      batch: 128,
      lr: 2e-4,
      finalLr: 2e-5,
      holdFraction: 0.05,
      ema: 0.9995,
      logEvery: 50,
      checkpointEvery: 2000,
    },
    sample: { steps: 50, count: 100, guidance: 'cfg', scale: 1.5, interval: [0, 0.7] },
    mae: {
      patch: 8,
      hidden: 384,
      layers: 6,
      heads: 6,
      decoderHidden: 256,
      decoderLayers: 4,
      decoderHeads: 8,
      steps: 20000,
      batch: 256,
      lr: 6e-4,
      finalLr: 1e-6,
      logEvery: 50,
      checkpointEvery: 2000,
    },
  },
  'gpu-b': {
    preset: 'gpu-b',
    data: { imageSize: 64, maxImages: 50000, heldOut: 256 },
    encoder: { inputSize: 64, hidden: 768, layers: 8, heads: 12, patch: 8, registers: 4 },
    decoder: {
      hidden: 512,
      layers: 8,
      heads: 8,
      mlp: 2048,
      steps: 10000,
      batch: 64,
      lr: 2e-4,
      finalLr: 2e-5,
      ema: 0.9978,
      logEvery: 50,
      evalEvery: 500,
      checkpointEvery: 1000,
    },
    dit: {
      hidden: [768, 2048],
      depth: [12, 2],
      heads: [12, 16],
      steps: 40000,
      batch: 128,
      lr: 2e-4,
      finalLr: 2e-5,
      holdFraction: 0.05,
      ema: 0.9995,
      logEvery: 50,
      checkpointEvery: 2000,
    },
    sample: { steps: 50, count: 100, guidance: 'cfg', scale: 1.5, interval: [0, 0.7] },
    mae: {
      patch: 8,
      hidden: 768,
      layers: 8,
      heads: 12,
      decoderHidden: 512,
      decoderLayers: 8,
      decoderHeads: 16,
      steps: 40000,
      batch: 256,
      lr: 6e-4,
      finalLr: 1e-6,
      logEvery: 50,
      checkpointEvery: 2000,
    },
  },
};

const isPlain = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Deep merge of plain objects; arrays and scalars in `patch` replace; undefined leaves alone. */
export function deepMerge<T>(base: T, patch: unknown): T {
  if (!isPlain(patch)) return (patch === undefined ? base : patch) as T;
  const out: Record<string, unknown> = isPlain(base) ? { ...base } : {};
  for (const [k, v] of Object.entries(patch)) if (v !== undefined) out[k] = isPlain(v) && isPlain(out[k]) ? deepMerge(out[k], v) : v;
  return out as T;
}

export function presetConfig(name: PresetName): RunConfig {
  return deepMerge(structuredClone(CPU), PRESET_PATCHES[name]);
}

/** Validates a merged configuration; problems come back as one readable line. */
export function parseConfig(value: unknown, where: string): RunConfig {
  // Configurations written before MAE pretraining existed have no 'mae' section: their preset's.
  if (isPlain(value) && value.mae === undefined && PRESETS.includes(value.preset as PresetName))
    value = { ...value, mae: presetConfig(value.preset as PresetName).mae };
  const r = ConfigSchema.safeParse(value);
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
  throw new ConfigError(`${where}: invalid configuration — ${problems.join('; ')}`);
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** The fields that shape each stage's model: a checkpoint only loads into the same values. */
export function modelShape(c: RunConfig, stage: 'decoder' | 'dit' | 'mae'): Record<string, unknown> {
  if (stage === 'mae') {
    const { patch, hidden, layers, heads, mlpRatio, decoderHidden, decoderLayers, decoderHeads, maskRatio } = c.mae;
    return {
      imageSize: c.data.imageSize,
      mae: { patch, hidden, layers, heads, mlpRatio, decoderHidden, decoderLayers, decoderHeads, maskRatio },
    };
  }
  const enc = { imageSize: c.data.imageSize, encoder: c.encoder };
  if (stage === 'decoder') {
    const { hidden, layers, heads, mlp } = c.decoder;
    return { ...enc, decoder: { hidden, layers, heads, mlp } };
  }
  const { kind, hidden, depth, heads, mlpRatio } = c.dit;
  return { ...enc, dit: { kind, hidden, depth, heads, mlpRatio } };
}

export function fingerprint(shape: Record<string, unknown>): string {
  return createHash('sha256').update(JSON.stringify(shape)).digest('hex').slice(0, 16);
}

/** Dotted paths whose values differ between two model shapes, "path: a ≠ b". */
export function describeDifferences(a: unknown, b: unknown, prefix = ''): string[] {
  if (isPlain(a) && isPlain(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) => describeDifferences(a[k], b[k], prefix ? `${prefix}.${k}` : k));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [`${prefix}: checkpoint ${JSON.stringify(a)} ≠ now ${JSON.stringify(b)}`];
}
