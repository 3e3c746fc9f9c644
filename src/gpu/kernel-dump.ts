/**
 * Node edge: kernel-compile hooks configured from the environment, installed by init().
 *   RAE_DUMP_WGSL=dir     writes every compiled kernel to dir/<name>.wgsl, its cache key in a
 *                         header comment (the name is the key made file-safe, plus a hash).
 *   RAE_LOG_COMPILES=1    logs each compile and its time to stderr.
 * The core never reads the environment; this module is the only place these variables are read.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KernelCompiledHook } from './pipeline-cache.js';

/** A file name for a cache key: readable, short enough for any file system, unique by hash. */
export function kernelFileName(key: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  const safe = key.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 120);
  return `${safe}-${(h >>> 0).toString(16).padStart(8, '0')}.wgsl`;
}

/** A hook that writes each kernel's source into `dir`. */
export function dumpWgslHook(dir: string): KernelCompiledHook {
  mkdirSync(dir, { recursive: true });
  return ({ key, source }) => writeFileSync(join(dir, kernelFileName(key)), `// cache key: ${key}\n${source}\n`);
}

/** The hooks the environment asks for, combined into one (undefined when none). */
export function kernelHooksFromEnv(env: NodeJS.ProcessEnv = process.env): KernelCompiledHook | undefined {
  const hooks: KernelCompiledHook[] = [];
  if (env.RAE_DUMP_WGSL) hooks.push(dumpWgslHook(env.RAE_DUMP_WGSL));
  if (env.RAE_LOG_COMPILES === '1') hooks.push(({ key, compileMs }) => console.error(`compiled ${key} in ${compileMs.toFixed(0)} ms`));
  if (hooks.length === 0) return undefined;
  return (k) => hooks.forEach((h) => h(k));
}
