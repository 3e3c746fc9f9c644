/**
 * CIFAR-10's binary release (`cifar-10-batches-bin`): `data_batch_1.bin` … `data_batch_5.bin` (train)
 * and `test_batch.bin` (test), each a run of 3073-byte records: one label byte, then 1024 red,
 * 1024 green and 1024 blue bytes of a 32×32 image, rows top to bottom. Class names come from
 * `batches.meta.txt` when present.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { DataError } from './errors.js';
import type { RawImage } from './image-ops.js';
import type { RecordSource } from './source.js';

const RECORD = 3073;
const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

/** The folder holding the batches: `dir` itself or its `cifar-10-batches-bin` child; null if neither. */
export function findCifarDir(dir: string): string | null {
  for (const d of [dir, path.join(dir, 'cifar-10-batches-bin')]) {
    if (existsSync(path.join(d, 'data_batch_1.bin')) || existsSync(path.join(d, 'test_batch.bin'))) return d;
  }
  return null;
}

export function openCifar10Binary(dir: string, split: string): RecordSource {
  if (!existsSync(dir)) throw new DataError(`data set not found: ${dir}`);
  const root = findCifarDir(dir);
  if (!root) throw new DataError(`${dir}: no CIFAR-10 binary batches (data_batch_1.bin … / test_batch.bin)`);
  const files =
    split === 'test'
      ? ['test_batch.bin']
      : readdirSync(root)
          .filter((f) => /^data_batch_\d+\.bin$/.test(f))
          .sort((a, b) => Number(a.match(/\d+/)![0]) - Number(b.match(/\d+/)![0]));
  if (files.length === 0 || !existsSync(path.join(root, files[0]))) throw new DataError(`${root}: no ${split} batches`);
  const buffers = files.map((f) => {
    const p = path.join(root, f);
    const size = statSync(p).size;
    if (size === 0 || size % RECORD !== 0)
      throw new DataError(`${p}: ${size} bytes is not a whole number of 3073-byte CIFAR-10 records (truncated?)`);
    return readFileSync(p);
  });
  const counts = buffers.map((b) => b.length / RECORD);
  const total = counts.reduce((a, b) => a + b, 0);
  const fileOf = new Int32Array(total);
  const offsetOf = new Float64Array(total);
  const labels = new Int32Array(total);
  let n = 0;
  buffers.forEach((b, f) => {
    for (let r = 0; r < counts[f]; r++, n++) {
      fileOf[n] = f;
      offsetOf[n] = r * RECORD;
      labels[n] = b[r * RECORD];
    }
  });
  let classes = CIFAR10_CLASSES;
  const meta = path.join(root, 'batches.meta.txt');
  if (existsSync(meta)) {
    const names = readFileSync(meta, 'utf8')
      .split(/\r?\n/)
      .map((s) => s.trim())
      .filter(Boolean);
    if (names.length > 0) classes = names;
  }
  const maxLabel = labels.reduce((m, v) => Math.max(m, v), 0);
  if (maxLabel >= classes.length) throw new DataError(`${root}: label ${maxLabel} but only ${classes.length} class names`);
  return {
    name: 'cifar10',
    source: dir,
    classes,
    labels,
    describe: (i) => `${path.join(root, files[fileOf[i]])} record ${offsetOf[i] / RECORD}`,
    load: async (indices) =>
      Array.from(indices, (i): RawImage => {
        const o = offsetOf[i] + 1;
        return { kind: 'pixels', bytes: buffers[fileOf[i]].subarray(o, o + 3072), width: 32, height: 32, channels: 3, planar: true };
      }),
    close: async () => {},
  };
}
