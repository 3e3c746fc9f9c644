/**
 * Two layering rules of issue #7 read from the sources: models never import the layers above
 * them (diffusion, train, cli), and the layers above the tensor layer never touch GPU buffers or
 * compute byte offsets (they copy through src/tensor/copy.ts).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const src = path.resolve(import.meta.dirname, '../../src');

function sources(dir: string): { file: string; text: string }[] {
  return readdirSync(path.join(src, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => ({ file: `${dir}/${f}`, text: readFileSync(path.join(src, dir, f), 'utf8') }));
}

function imports(text: string): string[] {
  return [...text.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+['"]([^'"]+)['"]/gm)].map((m) => m[1]);
}

describe('layer boundaries', () => {
  it('src/models imports nothing from diffusion, train or cli', () => {
    const files = sources('models');
    expect(files.length).toBeGreaterThan(3);
    const bad = files.flatMap(({ file, text }) =>
      imports(text)
        .filter((i) => /^\.\.\/(diffusion|train|cli)\//.test(i))
        .map((i) => `${file} → ${i}`),
    );
    expect(bad).toEqual([]);
  });

  // src/train is an edge layer (files, run folders, the adapter named in reports): it may use the
  // runtime, but it copies tensors through the tensor layer like the others.
  it('nn, models and diffusion do not reach the GPU runtime; none of them nor train computes byte offsets', () => {
    const files = ['nn', 'models', 'diffusion', 'train'].flatMap(sources);
    const bad = files.flatMap(({ file, text }) => {
      const hits: string[] = [];
      if (!file.startsWith('train/')) for (const i of imports(text)) if (/\/gpu\//.test(i)) hits.push(`${file} imports ${i}`);
      // Byte-size arithmetic on buffers: `f16 ? 2 : 4`, `offset * 4`, `.buffer` handles. The data
      // pipeline (train/data) moves host image bytes between worker threads, which needs the
      // ArrayBuffers of its typed arrays; it never sees a GPU buffer.
      if (file.startsWith('train/data/')) return hits;
      for (const m of text.matchAll(/\?\s*2\s*:\s*4|\boffset\s*\*\s*\d|\.buffer\b(?!\()/g)) hits.push(`${file}: ${m[0]}`);
      return hits;
    });
    expect(bad).toEqual([]);
  });
});
