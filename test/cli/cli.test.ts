/** The CLI as a user runs it: `rae info` (adapter discovery + self-check) and `rae demo --quick`. */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const viteNode = path.join(root, 'node_modules/.bin/vite-node');

function rae(args: string[], env: NodeJS.ProcessEnv = {}) {
  const e = { ...process.env, ...env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete e[k];
  return spawnSync(viteNode, [path.join(root, 'src/cli/main.ts'), ...args], { cwd: root, env: e, encoding: 'utf8', timeout: 240_000 });
}

describe('rae info', () => {
  it('finds an adapter with VK_ICD_FILENAMES unset and the self-check passes', () => {
    const r = rae(['info', '--json'], { VK_ICD_FILENAMES: undefined });
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout.slice(r.stdout.indexOf('{')));
    expect(report.selfCheck.ok).toBe(true);
    expect(report.adapter.attempts.length).toBeGreaterThan(0);
    expect(report.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
  });

  it('a pinned ICD that does not exist gives one clear error listing what was tried', () => {
    const r = rae(['info'], { VK_ICD_FILENAMES: '/nonexistent/icd.json' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/no WebGPU adapter found/);
    expect(r.stderr).toMatch(/VK_ICD_FILENAMES=\/nonexistent\/icd.json/);
    expect(r.stderr).toMatch(/bookworm-backports/);
  });
});

describe('rae demo', () => {
  it('--quick runs the pipeline end to end and writes the report and images', () => {
    const out = mkdtempSync(path.join(tmpdir(), 'rae-demo-'));
    const r = rae(['demo', '--quick', '--out', out]);
    expect(r.status, r.stderr + r.stdout).toBe(0);
    for (const f of ['report.json', 'report.md', 'samples.png', 'reconstructions.png']) expect(existsSync(path.join(out, f)), f).toBe(true);
    const report = JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8'));
    expect(report.data.images).toBe(40);
    expect(Number.isFinite(report.stage1.finalL1)).toBe(true);
    expect(Number.isFinite(report.stage2.finalMse)).toBe(true);
    expect(report.sampling.eulerSteps).toBe(3);
  });

  it('rejects an unknown option', () => {
    const r = rae(['demo', '--bogus']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/unknown option --bogus/);
  });
});
