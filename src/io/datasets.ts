/**
 * Image-folder data sets (`<split>/<class>/<file>.jpg`), read straight from a .tar.gz archive
 * (as shipped in shared/datasets) or from a directory, into [N, 3, H, W] floats in [0, 1].
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import * as tar from 'tar';
import { decodeImage } from './images.js';

export interface ImageSet {
  images: Float32Array;
  labels: Int32Array;
  classes: string[];
  count: number;
  height: number;
  width: number;
}

export interface LoadOptions {
  split?: string;
  /** At most this many images per class (taken in file-name order). */
  perClass?: number;
  /** Only these classes (by name); default all. */
  classes?: string[];
}

function assemble(entries: { cls: string; name: string; bytes: Uint8Array }[], source: string): ImageSet {
  if (entries.length === 0) throw new Error(`${source}: no images found`);
  entries.sort((a, b) => (a.cls === b.cls ? a.name.localeCompare(b.name) : a.cls.localeCompare(b.cls)));
  const classes = [...new Set(entries.map((e) => e.cls))];
  const first = decodeImage(entries[0].bytes, entries[0].name);
  const { width, height } = first;
  const per = 3 * width * height;
  const images = new Float32Array(entries.length * per);
  const labels = new Int32Array(entries.length);
  entries.forEach((e, i) => {
    const img = i === 0 ? first : decodeImage(e.bytes, e.name);
    if (img.width !== width || img.height !== height)
      throw new Error(`${source}: ${e.cls}/${e.name} is ${img.width}×${img.height}, expected ${width}×${height}`);
    images.set(img.data, i * per);
    labels[i] = classes.indexOf(e.cls);
  });
  return { images, labels, classes, count: entries.length, height, width };
}

/** Loads an image-folder split from a directory or a .tar.gz archive. */
export async function loadImageFolder(source: string, opts: LoadOptions = {}): Promise<ImageSet> {
  if (!existsSync(source)) throw new Error(`data set ${source} does not exist`);
  const split = opts.split ?? 'train';
  const perClass = opts.perClass ?? Infinity;
  const taken = new Map<string, number>();
  const want = (cls: string) => (!opts.classes || opts.classes.includes(cls)) && (taken.get(cls) ?? 0) < perClass;
  const entries: { cls: string; name: string; bytes: Uint8Array }[] = [];

  if (statSync(source).isDirectory()) {
    const root = path.join(source, split);
    if (!existsSync(root)) throw new Error(`${source}: no '${split}' folder`);
    for (const cls of readdirSync(root).sort()) {
      for (const name of readdirSync(path.join(root, cls)).sort()) {
        if (!want(cls)) break;
        entries.push({ cls, name, bytes: readFileSync(path.join(root, cls, name)) });
        taken.set(cls, (taken.get(cls) ?? 0) + 1);
      }
    }
    return assemble(entries, source);
  }

  // Archive: stream through it once, keeping only the first perClass files of each class.
  await tar.t({
    file: source,
    onReadEntry: (entry) => {
      const parts = entry.path.split('/').filter(Boolean);
      const i = parts.indexOf(split);
      if (entry.type !== 'File' || i < 0 || parts.length !== i + 3 || !/\.(jpe?g|png)$/i.test(parts[i + 2])) {
        entry.resume();
        return;
      }
      const cls = parts[i + 1];
      if (!want(cls)) {
        entry.resume();
        return;
      }
      taken.set(cls, (taken.get(cls) ?? 0) + 1);
      const chunks: Buffer[] = [];
      entry.on('data', (c: Buffer) => chunks.push(c));
      entry.on('end', () => entries.push({ cls, name: parts[i + 2], bytes: Buffer.concat(chunks) }));
    },
  });
  return assemble(entries, source);
}
