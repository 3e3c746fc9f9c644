/** A synthetic run folder laid out as the training commands write it (notes/ISSUE8.md). */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PNG } from 'pngjs';

/** A w×h PNG with a deterministic colour pattern (so a screenshot shows something image-like). */
export function patternPng(w: number, h: number, seed: number): Buffer {
  const png = new PNG({ width: w, height: h });
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const i = 4 * (y * w + x);
      png.data[i] = (x * 7 + seed * 40) & 255;
      png.data[i + 1] = (y * 5 + seed * 90) & 255;
      png.data[i + 2] = ((x ^ y) * 3 + seed * 13) & 255;
      png.data[i + 3] = 255;
    }
  return PNG.sync.write(png);
}

export interface FixtureOptions {
  stages?: ('decoder' | 'dit')[];
  classNames?: string[];
  steps?: number;
  samples?: boolean;
}

/** Writes config.json, run.json, metrics.jsonl, reconstructions/ and samples/ under `dir`. */
export function writeRunFolder(dir: string, opts: FixtureOptions = {}): void {
  const stages = opts.stages ?? ['decoder', 'dit'];
  const classNames = opts.classNames ?? ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
  const steps = opts.steps ?? 200;
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    path.join(dir, 'config.json'),
    JSON.stringify(
      {
        preset: 'tiny',
        fingerprint: 'a1b2c3d4',
        data: { source: '/data/cifar', imageSize: 32 },
        decoder: { steps, lr: 2e-4, noiseTau: 0.8 },
        dit: { steps, width: 384 },
      },
      null,
      2,
    ),
  );
  writeFileSync(
    path.join(dir, 'run.json'),
    JSON.stringify({
      adapter: { description: 'llvmpipe (LLVM 15.0.6, 256 bits)', backend: 'vulkan', software: true },
      data: {
        name: 'cifar10',
        source: '/data/cifar',
        train: 4900,
        heldOut: 100,
        skipped: 1,
        classes: classNames,
      },
      encoder: 'dinov2-with-registers-small (random init)',
      commands: stages.map((s, i) => ({
        command: s === 'decoder' ? 'train-decoder' : 'train-dit',
        argv: ['--run', dir, '--preset', 'tiny'],
        startedAt: `2026-12-01T2${i}:00:00.000Z`,
        endedAt: `2026-12-01T2${i}:05:00.000Z`,
        seconds: 300,
        steps,
        imagesPerSecond: 40 + 10 * i,
      })),
    }),
  );
  const lines: string[] = [];
  for (const stage of stages)
    for (let step = 1; step <= steps; step++) {
      // A falling, noisy loss (deterministic "noise"), warm-up then cosine LR.
      const loss = (stage === 'decoder' ? 0.5 : 2) * Math.exp(-step / (steps / 3)) * (1 + 0.3 * Math.sin(step * 12.9898)) + 0.02;
      const lr = 2e-4 * Math.min(1, step / 20) * 0.5 * (1 + Math.cos((Math.PI * step) / steps));
      // Stage 2 is resumed half-way: its second command's clock starts again from zero.
      const seconds = stage === 'dit' && step > steps / 2 ? (step - steps / 2) * 1.5 : step * 1.5;
      const row: Record<string, unknown> = { stage, step, loss, lr, seconds, imagesPerSecond: 40 + 5 * Math.sin(step) };
      if (stage === 'decoder' && step % 50 === 0) Object.assign(row, { psnr: 14 + step / 20, ssim: 0.3 + step / 1000 });
      if (stage === 'decoder') row.gradNorm = 3 * Math.exp(-step / steps) * (1 + 0.5 * Math.abs(Math.sin(step * 7.1)));
      lines.push(JSON.stringify(row));
    }
  writeFileSync(path.join(dir, 'metrics.jsonl'), `${lines.join('\n')}\n`);
  if (stages.includes('decoder')) {
    mkdirSync(path.join(dir, 'reconstructions'), { recursive: true });
    for (let step = 50; step <= steps; step += 50) {
      const name = `step-${String(step).padStart(8, '0')}`;
      writeFileSync(path.join(dir, 'reconstructions', `${name}.png`), patternPng(8 * 34 + 2, 2 * 34 + 2, step / 50));
      writeFileSync(
        path.join(dir, 'reconstructions', `${name}.json`),
        JSON.stringify({ step, psnr: 14 + step / 20, ssim: 0.3 + step / 1000, count: 8 }),
      );
    }
  }
  if (opts.samples ?? stages.includes('dit')) {
    // As the sampler writes them: an overview grid, then one row of images per class.
    const tag = `dit-${String(steps).padStart(8, '0')}-heun-cfg1.5`;
    const tagDir = path.join(dir, 'samples', tag);
    mkdirSync(tagDir, { recursive: true });
    writeFileSync(path.join(tagDir, 'grid.png'), patternPng(10 * 34 + 2, 4 * 34 + 2, 7));
    classNames.forEach((_, k) => writeFileSync(path.join(tagDir, `class-${k}.png`), patternPng(4 * 34 + 2, 34 + 2, k)));
    writeFileSync(
      path.join(tagDir, 'samples.json'),
      JSON.stringify({
        tag,
        step: steps,
        sampler: 'heun',
        steps: 25,
        guidance: { kind: 'cfg', scale: 1.5, interval: [0.1, 1] },
        classes: classNames,
        count: 4 * classNames.length,
        weights: 'ema',
        seed: 0,
        seconds: 12.5,
      }),
    );
  }
}
