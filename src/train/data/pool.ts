/**
 * Decoding off the main thread: a pool of worker threads, each running `makeImageOps` (shipped as
 * source text, see image-ops.ts) over sharp. A job is a list of raw images packed into one
 * transferred buffer; the answer is their [3, S, S] crops packed into another, plus per-image
 * errors (so one bad file does not lose the rest of the batch).
 * Idle workers are unref'd: an open pool never keeps the process alive.
 */
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import sharp from 'sharp';
import { makeImageOps, type RawImage, type SharpLike } from '../../io/formats/image-ops.js';

export interface DecodeResult {
  /** [n, 3, size, size] uint8; slots of failed images are zero. */
  out: Uint8Array;
  errors: { index: number; message: string }[];
}

/** Raw images flattened to one buffer + descriptors, so a job moves by transfer, not clone. */
interface PackedJob {
  id: number;
  size: number;
  data: Uint8Array;
  items: { offset: number; length: number; kind: 'encoded' | 'pixels'; width: number; height: number; channels: number; planar: boolean }[];
}

function pack(id: number, images: RawImage[], size: number): PackedJob {
  const total = images.reduce((s, im) => s + im.bytes.length, 0);
  const data = new Uint8Array(total);
  let offset = 0;
  const items = images.map((im) => {
    data.set(im.bytes, offset);
    const item = {
      offset,
      length: im.bytes.length,
      kind: im.kind,
      width: im.kind === 'pixels' ? im.width : 0,
      height: im.kind === 'pixels' ? im.height : 0,
      channels: im.kind === 'pixels' ? im.channels : 0,
      planar: im.kind === 'pixels' ? im.planar : false,
    };
    offset += im.bytes.length;
    return item;
  });
  return { id, size, data, items };
}

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const sharp = require(workerData.sharpPath);
sharp.concurrency(1);
sharp.cache(false);
const ops = (${makeImageOps.toString()})();
parentPort.on('message', async (job) => {
  const per = 3 * job.size * job.size;
  const out = new Uint8Array(job.items.length * per);
  const errors = [];
  // All items at once: sharp's per-call latency overlaps on libuv's threads.
  await Promise.all(job.items.map(async (it, i) => {
    const bytes = job.data.subarray(it.offset, it.offset + it.length);
    const raw = it.kind === 'encoded' ? { kind: 'encoded', bytes } : { kind: 'pixels', bytes, width: it.width, height: it.height, channels: it.channels, planar: it.planar };
    try {
      out.set(await ops.toCHW(sharp, raw, job.size), i * per);
    } catch (e) {
      errors.push({ index: i, message: String((e && e.message) || e) });
    }
  }));
  errors.sort((a, b) => a.index - b.index);
  parentPort.postMessage({ id: job.id, out, errors }, [out.buffer]);
});
`;

const mainOps = makeImageOps();

/** Decodes on the calling thread (sharp's own work still runs on libuv's pool). */
export async function decodeOnMainThread(images: RawImage[], size: number): Promise<DecodeResult> {
  const per = 3 * size * size;
  const out = new Uint8Array(images.length * per);
  const errors: DecodeResult['errors'] = [];
  await Promise.all(
    images.map(async (im, i) => {
      try {
        out.set(await mainOps.toCHW(sharp as unknown as SharpLike, im, size), i * per);
      } catch (e) {
        errors.push({ index: i, message: (e as Error).message ?? String(e) });
      }
    }),
  );
  errors.sort((a, b) => a.index - b.index);
  return { out, errors };
}

/** The pool itself failed (a worker died or could not start), not an image. */
export class DecodePoolError extends Error {
  override name = 'DecodePoolError';
}

export function defaultWorkerCount(): number {
  return Math.max(1, Math.min(8, availableParallelism() - 1));
}

interface Slot {
  worker: Worker;
  busy: boolean;
}

export class DecodePool {
  private slots: Slot[] = [];
  private queue: { job: PackedJob; resolve: (r: DecodeResult) => void; reject: (e: Error) => void }[] = [];
  private pending = new Map<number, { resolve: (r: DecodeResult) => void; reject: (e: Error) => void; slot: Slot }>();
  private nextId = 0;
  private closed = false;

  /** @param source the worker's code (tests substitute a broken one) */
  constructor(
    readonly workers: number,
    source = WORKER_SOURCE,
  ) {
    const sharpPath = createRequire(import.meta.url).resolve('sharp');
    for (let w = 0; w < workers; w++) {
      const worker = new Worker(source, { eval: true, workerData: { sharpPath } });
      const slot: Slot = { worker, busy: false };
      worker.unref();
      worker.on('message', (m: { id: number; out: Uint8Array; errors: DecodeResult['errors'] }) => {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        slot.busy = false;
        p.resolve({ out: m.out, errors: m.errors });
        this.pump();
      });
      worker.on('error', (e) => this.fail(slot, new DecodePoolError(`decode worker failed: ${e.message}`)));
      worker.on('exit', (code) => {
        if (!this.closed) this.fail(slot, new DecodePoolError(`decode worker exited with code ${code}`));
      });
      this.slots.push(slot);
    }
  }

  private fail(slot: Slot, e: DecodePoolError): void {
    for (const [id, p] of this.pending) {
      if (p.slot === slot) {
        this.pending.delete(id);
        p.reject(e);
      }
    }
    this.slots = this.slots.filter((s) => s !== slot);
    if (this.slots.length === 0) for (const q of this.queue.splice(0)) q.reject(e);
  }

  private pump(): void {
    for (const slot of this.slots) {
      if (slot.busy) continue;
      const q = this.queue.shift();
      if (!q) break;
      slot.busy = true;
      this.pending.set(q.job.id, { resolve: q.resolve, reject: q.reject, slot });
      slot.worker.postMessage(q.job, [q.job.data.buffer as ArrayBuffer]);
    }
    // Busy workers hold the process (a batch is awaited); idle ones must not.
    for (const slot of this.slots) slot.busy ? slot.worker.ref() : slot.worker.unref();
  }

  private run(images: RawImage[], size: number): Promise<DecodeResult> {
    if (this.closed) return Promise.reject(new DecodePoolError('decode pool is closed'));
    if (this.slots.length === 0) return Promise.reject(new DecodePoolError('decode pool has no live workers'));
    const job = pack(this.nextId++, images, size);
    return new Promise((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      this.pump();
    });
  }

  /** Splits the images over the workers in chunks and reassembles the crops in order. */
  async decode(images: RawImage[], size: number, chunk = 64): Promise<DecodeResult> {
    const per = 3 * size * size;
    const step = Math.max(1, Math.min(chunk, Math.ceil(images.length / Math.max(1, this.slots.length))));
    const parts: Promise<DecodeResult>[] = [];
    for (let s = 0; s < images.length; s += step) parts.push(this.run(images.slice(s, s + step), size));
    const results = await Promise.all(parts);
    const out = new Uint8Array(images.length * per);
    const errors: DecodeResult['errors'] = [];
    results.forEach((r, k) => {
      out.set(r.out, k * step * per);
      for (const e of r.errors) errors.push({ index: e.index + k * step, message: e.message });
    });
    return { out, errors };
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    this.slots = [];
  }
}

const shared = new Map<number, DecodePool>();

/** A process-wide pool per worker count (idle workers never hold the process). */
export function sharedDecodePool(workers: number): DecodePool {
  let pool = shared.get(workers);
  if (!pool) {
    pool = new DecodePool(workers);
    shared.set(workers, pool);
  }
  return pool;
}

/** Terminates the shared pools (tests; a CLI may simply exit). */
export async function closeSharedDecodePools(): Promise<void> {
  const pools = [...shared.values()];
  shared.clear();
  await Promise.all(pools.map((p) => p.close()));
}
