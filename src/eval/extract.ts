/**
 * Feature extraction for the metrics: a feature network (nsfwjs's InceptionV3 by default, or the
 * standard FID Inception from a safetensors file) run over an image set batch by batch, with a
 * progress display (a cli-progress bar on a terminal, plain lines otherwise). Only one batch of
 * decoded images exists at a time; the features (8 KB per image) are kept for KID and
 * precision/recall, which need the samples themselves and not only their statistics.
 */
import cliProgress from 'cli-progress';
import { runtime } from '../gpu/runtime.js';
import { toArray } from '../tensor/creation.js';
import { featureSet, type FeatureSet, MetricInputError } from './features.js';
import { FidInception } from './fid-inception.js';
import { loadFidInceptionSafetensors } from './fid-inception-layout.js';
import type { ImageSource } from './image-set.js';
import { EngineInception, type InceptionImage } from './inception.js';
import { loadNsfwjsInception } from './inception-weights.js';

/** A network mapping images to feature vectors; `id` names it in statistics caches and reports. */
export interface FeatureNetwork {
  /** e.g. "nsfwjs-inception-v3 mixed10 avg 2048 @299 bilinear". */
  readonly id: string;
  readonly weightsSha256: string;
  readonly dim: number;
  /** Whether its FIDs can be compared with published ones. */
  readonly comparable: boolean;
  /** Features of a batch of u8 RGB images (any sizes), row-major [n × dim]. */
  features(images: readonly InceptionImage[]): Promise<Float32Array>;
  dispose(): void;
}

export const NSFWJS_NOTE =
  'Features from nsfwjs’s InceptionV3 (weights fine-tuned for another task): these FIDs are consistent within this project but not comparable to published values.';
export const FID_INCEPTION_NOTE =
  'Features from the standard FID Inception (pytorch-fid weights): comparable to published FIDs at equal sample counts.';

/** The largest activation of both networks: the stem's 64 × 147 × 147 f32 map, per image. */
const LARGEST_ACTIVATION_BYTES = 64 * 147 * 147 * 4;

/**
 * Images per forward pass the adapter's buffer limits allow (lavapipe's 128 MiB: 24); a larger
 * --batch is split into passes of this size rather than failing on a buffer allocation.
 */
export function maxInceptionBatch(): number {
  const l = runtime().device.limits;
  return Math.max(1, Math.floor(Math.min(l.maxBufferSize, l.maxStorageBufferBindingSize) / LARGEST_ACTIVATION_BYTES));
}

function splitPasses(dim: number, run: (images: readonly InceptionImage[]) => Promise<Float32Array>) {
  return async (images: readonly InceptionImage[]): Promise<Float32Array> => {
    const max = maxInceptionBatch();
    if (images.length <= max) return run(images);
    const out = new Float32Array(images.length * dim);
    for (let at = 0; at < images.length; at += max) out.set(await run(images.slice(at, at + max)), at * dim);
    return out;
  };
}

/** The runtime must be initialised. `inception`: a safetensors file of the standard FID Inception. */
export function loadFeatureNetwork(opts: { inception?: string } = {}): FeatureNetwork {
  if (opts.inception) {
    const weights = loadFidInceptionSafetensors(opts.inception);
    const net = new FidInception(weights, opts.inception);
    return {
      id: 'fid-inception-v3 pool3 2048 @299 bilinear',
      weightsSha256: net.weightsSha256,
      dim: 2048,
      comparable: true,
      features: splitPasses(2048, async (images) => readBack(net.images(images))),
      dispose: () => net.dispose(),
    };
  }
  const nsfw = loadNsfwjsInception();
  const net = new EngineInception(nsfw);
  return {
    id: 'nsfwjs-inception-v3 mixed10 avg 2048 @299 bilinear',
    weightsSha256: nsfw.weightsSha256,
    dim: 2048,
    comparable: false,
    features: splitPasses(2048, async (images) => {
      const o = net.images(images);
      o.mixed0Mean.dispose();
      return readBack(o.features);
    }),
    dispose: () => net.dispose(),
  };
}

async function readBack(t: import('../tensor/tensor.js').Tensor): Promise<Float32Array> {
  try {
    return (await toArray(t)) as Float32Array;
  } finally {
    t.dispose();
  }
}

export interface ExtractOptions {
  /** Images per forward pass (default 8). */
  batch?: number;
  /** Label of the progress display (default the set's name). */
  label?: string;
  quiet?: boolean;
  /** Where progress lines go when not on a terminal (default stdout). */
  log?: (line: string) => void;
}

/** Progress over images: a bar on a terminal, a line per batch (at most one a second) otherwise. */
class ExtractProgress {
  private bar: cliProgress.SingleBar | null = null;
  private readonly t0 = performance.now();
  private lastLine = 0;
  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly quiet: boolean,
    private readonly log: (line: string) => void,
  ) {
    if (!quiet && process.stdout.isTTY) {
      this.bar = new cliProgress.SingleBar(
        { format: `${label} |{bar}| {value}/{total} images | {ips} img/s | ETA {eta_formatted}`, hideCursor: true, etaBuffer: 8 },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(total, 0, { ips: '-' });
    }
  }
  update(done: number): void {
    const secs = (performance.now() - this.t0) / 1000;
    const ips = done / Math.max(secs, 1e-9);
    if (this.bar) this.bar.update(done, { ips: ips.toFixed(2) });
    else if (!this.quiet && (done === this.total || performance.now() - this.lastLine > 1000)) {
      this.lastLine = performance.now();
      const eta = ips > 0 ? (this.total - done) / ips : 0;
      this.log(`${this.label} ${done}/${this.total} images  ${ips.toFixed(2)} img/s  eta ${Math.round(eta)}s`);
    }
  }
  stop(): void {
    this.bar?.stop();
  }
}

/** Features of the first `limit` images of a set (all by default), `batch` at a time. */
export async function extractFeatures(
  set: ImageSource,
  net: FeatureNetwork,
  opts: ExtractOptions & { limit?: number } = {},
): Promise<FeatureSet> {
  const batch = opts.batch ?? 8;
  if (!Number.isSafeInteger(batch) || batch < 1) throw new MetricInputError(`--batch must be a positive integer, got ${batch}`);
  const n = Math.min(set.count, opts.limit ?? set.count);
  const out = new Float32Array(n * net.dim);
  const progress = new ExtractProgress(opts.label ?? set.name, n, Boolean(opts.quiet), opts.log ?? ((l) => console.log(l)));
  try {
    for (let at = 0; at < n; at += batch) {
      const end = Math.min(n, at + batch);
      const images = await set.read(at, end);
      out.set(await net.features(images), at * net.dim);
      progress.update(end);
      await runtime().yieldIfBusy();
    }
  } finally {
    progress.stop();
  }
  return featureSet(out, n, net.dim);
}
