/**
 * The layering of src/ as DESIGN.md draws it, checked on the source text: no import cycles
 * (type-only imports included, they make the d.ts bundle and a reader's job just as circular),
 * dependencies pointing down only, and a platform-neutral core (no `node:` import, no
 * environment read) outside the named Node edge files.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(__dirname, '../../src');

/** Bottom to top: a folder may import its own files and folders listed before it. */
const LAYERS = ['core', 'cpu', 'gpu', 'kernels', 'tensor', 'autograd', 'nn', 'models', 'diffusion', 'io', 'train', 'eval', 'report', 'cli'];
/** Folders that must run in a browser as well: no `node:` modules, no `process.env`. */
const CORE = ['core', 'gpu', 'kernels', 'tensor', 'autograd', 'nn', 'models', 'diffusion'];
/** The Node edge inside core folders: finding an adapter through Dawn, reading options from the environment. */
const NODE_EDGE = ['gpu/discovery.ts', 'gpu/node.ts', 'gpu/kernel-dump.ts', 'gpu/event-polling.ts'];

interface Import {
  target: string;
  typeOnly: boolean;
  dynamic: boolean;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Static, re-export and dynamic imports of one file; relative ones resolved to a file under src/. */
function importsOf(file: string, text: string): Import[] {
  const out: Import[] = [];
  const statics = /^\s*(import|export)\s+(type\s+)?([^'";]*?\sfrom\s+)?['"]([^'"]+)['"]/gm;
  for (const m of text.matchAll(statics)) {
    if (m[1] === 'export' && !m[3]) continue; // `export const x = '…'` is no import
    out.push({
      target: resolve(file, m[4]),
      typeOnly: Boolean(m[2]) || /^\{\s*(type\s+[\w$]+\s*,?\s*)+\}\s*from/.test(m[3] ?? ''),
      dynamic: false,
    });
  }
  for (const m of text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g))
    out.push({ target: resolve(file, m[1]), typeOnly: false, dynamic: true });
  return out;
}

function resolve(from: string, spec: string): string {
  if (!spec.startsWith('.')) return spec;
  const abs = path.resolve(path.dirname(from), spec);
  const ts = abs.replace(/\.js$/, '.ts');
  for (const c of [ts, `${abs}.ts`, path.join(abs, 'index.ts')]) {
    try {
      if (statSync(c).isFile()) return path.relative(SRC, c).split(path.sep).join('/');
    } catch {
      // try the next spelling
    }
  }
  throw new Error(`${path.relative(SRC, from)}: import '${spec}' does not resolve to a file under src/`);
}

const files = sourceFiles(SRC).map((abs) => {
  const text = readFileSync(abs, 'utf8');
  return { rel: path.relative(SRC, abs).split(path.sep).join('/'), text, imports: importsOf(abs, text) };
});
const folderOf = (rel: string) => (rel.includes('/') ? rel.slice(0, rel.indexOf('/')) : null);

/** Strongly connected components with more than one file (Tarjan), each a cycle. */
function cycles(edges: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (edges.get(v) ?? []).includes(v)) found.push(scc.sort());
    }
  };
  for (const v of edges.keys()) if (!index.has(v)) visit(v);
  return found;
}

describe('layers of src/', () => {
  it('finds the files and their imports', () => {
    expect(files.length).toBeGreaterThan(50);
    const tensor = files.find((f) => f.rel === 'tensor/tensor.ts')!;
    expect(tensor.imports.length).toBeGreaterThan(0);
    // Every top-level folder has a place in the layering.
    for (const f of files) {
      const folder = folderOf(f.rel);
      if (folder) expect(LAYERS, `${f.rel} is in a folder the layering does not name`).toContain(folder);
    }
  });

  it('has no import cycle (type-only imports included)', () => {
    const edges = new Map(
      files.map((f) => [f.rel, f.imports.filter((i) => !i.target.startsWith('node:') && i.target.includes('.ts')).map((i) => i.target)]),
    );
    expect(cycles(edges).map((c) => c.join(' <-> '))).toEqual([]);
  });

  it('imports only from its own layer or the layers below it', () => {
    const violations: string[] = [];
    for (const f of files) {
      const from = folderOf(f.rel);
      if (!from) continue; // src/index.ts is the top: it may import anything
      for (const i of f.imports) {
        const to = i.target.endsWith('.ts') ? folderOf(i.target) : null;
        if (!to || to === from) continue;
        if (LAYERS.indexOf(to) > LAYERS.indexOf(from))
          violations.push(`${f.rel} imports ${i.target}${i.typeOnly ? ' (type only)' : ''}: ${from} is below ${to}`);
      }
    }
    expect(violations).toEqual([]);
  });

  it('keeps the core platform-neutral: no node: modules, no environment reads outside the Node edge', () => {
    const violations: string[] = [];
    for (const f of files) {
      const folder = folderOf(f.rel);
      if (!folder || !CORE.includes(folder) || NODE_EDGE.includes(f.rel)) continue;
      for (const i of f.imports) if (i.target.startsWith('node:') && !i.typeOnly) violations.push(`${f.rel} imports ${i.target}`);
      if (/\bprocess\s*\.\s*(env|platform|argv|cwd|pid)\b/.test(f.text)) violations.push(`${f.rel} reads the process environment`);
      if (/\bfrom\s+['"](fs|path|os|child_process|module|url)['"]/.test(f.text))
        violations.push(`${f.rel} imports a Node built-in without the node: prefix`);
    }
    expect(violations).toEqual([]);
  });

  it('keeps the Node edge small: only the named files may use Node', () => {
    for (const edge of NODE_EDGE)
      expect(
        files.map((f) => f.rel),
        `${edge} is named as the Node edge but does not exist`,
      ).toContain(edge);
  });
});
