/**
 * Image folders and .tar.gz archives of them. Layouts, relative to the folder or archive root:
 *   <split>/<class>/<file>   (ImageNet style; the split folder may sit below a top folder)
 *   <class>/<file>           (no split folders: every image belongs to the 'train' split)
 *   <file>                   (a flat folder: one class, named after the folder)
 * Archives are streamed once (never unpacked to disk) keeping only the encoded bytes of the
 * chosen split, which are a small fraction of the decoded pixels; folders keep only paths.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { DataError } from './errors.js';
import type { RawImage } from './image-ops.js';
import { IMAGE_FILE, type RecordSource } from './source.js';
import { scanTar } from './tar.js';

interface Classified {
  classes: string[];
  /** Indices into the input paths that belong to the split, sorted by (class, path). */
  picked: number[];
  labels: Int32Array;
}

/** Assigns each image path (relative, '/'-separated) of the split to a class, per the layouts above. */
export function classifyPaths(paths: string[], split: string, rootName: string, where: string): Classified {
  const parts = paths.map((p) => p.split('/').filter((s) => s && s !== '.'));
  const hasSplit = parts.some((s) => s.slice(0, -1).includes(split));
  if (!hasSplit && split !== 'train') throw new DataError(`${where}: no '${split}' folder`);
  const entries: { i: number; cls: string; rel: string }[] = [];
  parts.forEach((segs, i) => {
    let rel = segs;
    if (hasSplit) {
      const at = segs.slice(0, -1).indexOf(split);
      if (at < 0) return;
      rel = segs.slice(at + 1);
    }
    entries.push({ i, cls: rel.length >= 2 ? rel[0] : rootName, rel: rel.join('/') });
  });
  if (entries.length === 0)
    throw new DataError(
      `${where}: no images found${hasSplit ? ` under '${split}'` : ''} (looked for .jpg/.png/.webp/.gif/.tiff/.avif files)`,
    );
  const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  entries.sort((a, b) => byName(a.cls, b.cls) || byName(a.rel, b.rel));
  const classes = [...new Set(entries.map((e) => e.cls))];
  const labels = Int32Array.from(entries, (e) => classes.indexOf(e.cls));
  return { classes, picked: entries.map((e) => e.i), labels };
}

function walk(root: string, rel: string, out: string[]): void {
  let names: import('node:fs').Dirent[];
  try {
    names = readdirSync(path.join(root, rel), { withFileTypes: true });
  } catch (e) {
    throw new DataError(`${path.join(root, rel)}: cannot list folder (${(e as NodeJS.ErrnoException).code ?? e})`);
  }
  for (const d of names) {
    if (d.name.startsWith('.')) continue;
    const r = rel ? `${rel}/${d.name}` : d.name;
    if (d.isDirectory()) walk(root, r, out);
    else if (IMAGE_FILE.test(d.name)) out.push(r);
  }
}

const baseName = (p: string) => path.basename(p).replace(/\.(tar\.gz|tgz|tar)$/i, '');

/** An image folder: keeps paths only, reads files per call. */
export function openImageFolder(root: string, split: string): RecordSource {
  if (!existsSync(root)) throw new DataError(`data set not found: ${root}`);
  if (!statSync(root).isDirectory()) throw new DataError(`${root}: not a folder`);
  const files: string[] = [];
  walk(root, '', files);
  const { classes, picked, labels } = classifyPaths(files, split, baseName(path.resolve(root)), root);
  const paths = picked.map((i) => path.join(root, files[i]));
  return {
    name: baseName(path.resolve(root)),
    source: root,
    classes,
    labels,
    describe: (i) => paths[i],
    load: (indices) =>
      Promise.all(
        Array.from(indices, async (i): Promise<RawImage> => {
          try {
            return { kind: 'encoded', bytes: await readFile(paths[i]) };
          } catch (e) {
            throw new DataError(`${paths[i]}: cannot read (${(e as NodeJS.ErrnoException).code ?? e})`);
          }
        }),
      ),
    close: async () => {},
  };
}

/** A .tar.gz (or .tar) of an image folder: one streaming pass, encoded bytes of the split kept. */
export async function openImageArchive(file: string, split: string): Promise<RecordSource> {
  if (!existsSync(file)) throw new DataError(`data set not found: ${file}`);
  const names: string[] = [];
  const bytes: Buffer[] = [];
  try {
    // Keep only images that can be in the split (classifyPaths decides for sure).
    const want = (p: string) =>
      IMAGE_FILE.test(p) && !path.posix.basename(p).startsWith('.') && (split === 'train' || p.split('/').includes(split));
    await scanTar(file, want, (p, data) => {
      names.push(p);
      bytes.push(data);
    });
  } catch (e) {
    throw new DataError(`${file}: cannot read archive (${(e as Error).message})`);
  }
  const { classes, picked, labels } = classifyPaths(names, split, baseName(file), file);
  // A train split without split folders must not pick up test images: classifyPaths handles it.
  const kept = picked.map((i) => bytes[i]);
  const keptNames = picked.map((i) => names[i]);
  return {
    name: baseName(file),
    source: file,
    classes,
    labels,
    describe: (i) => `${file}:${keptNames[i]}`,
    load: async (indices) => Array.from(indices, (i): RawImage => ({ kind: 'encoded', bytes: kept[i] })),
    close: async () => {},
  };
}
