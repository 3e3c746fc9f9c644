/**
 * Rewrites the WGSL snapshots in wgsl/ from the generators (src/kernels/catalog.ts) and removes
 * snapshot files that no longer have a catalog entry. Run: npm run wgsl:snapshots
 */
import { readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { kernelSnapshots, renderSnapshot } from '../src/kernels/catalog.js';

const dir = fileURLToPath(new URL('../wgsl/', import.meta.url));
const snapshots = kernelSnapshots();
const names = new Set(snapshots.map((s) => s.file));
for (const s of snapshots) writeFileSync(dir + s.file, renderSnapshot(s));
for (const f of readdirSync(dir)) {
  if (f.endsWith('.wgsl') && !names.has(f)) {
    unlinkSync(dir + f);
    console.log(`removed stale ${f}`);
  }
}
console.log(`wrote ${snapshots.length} kernels to wgsl/`);
