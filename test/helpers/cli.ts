/** Running the `rae` CLI from tests: in a child process, through vite-node, on the sources. */
import { spawn } from 'node:child_process';
import path from 'node:path';

export const repoRoot = path.resolve(import.meta.dirname, '../..');
export const viteNode = path.join(repoRoot, 'node_modules/.bin/vite-node');

export interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `rae ARGS` asynchronously (a synchronous spawn would stall vitest's worker for minutes).
 * `env` adds variables to this process's environment; an undefined value removes one.
 */
export function rae(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Ran> {
  const e: NodeJS.ProcessEnv = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp', ...env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete e[k];
  return new Promise((resolve, reject) => {
    const child = spawn(viteNode, [path.join(repoRoot, 'src/cli/main.ts'), ...args], { cwd: repoRoot, env: e });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** Lines that are ours (Dawn prints its own warnings on the same stream). */
export const ownLines = (s: string) => s.split('\n').filter((l) => l.trim() && !l.startsWith('Warning: '));
