/**
 * Finding a WebGPU adapter through Dawn's Node bindings, on machines with or without a GPU.
 *
 * Order: whatever the Vulkan loader finds by itself; then, only if the user did not pin an ICD
 * with VK_ICD_FILENAMES, Mesa's lavapipe and then SwiftShader. The Vulkan loader reads
 * VK_ICD_FILENAMES when an instance is created, so each retry makes a fresh Dawn instance.
 */
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { freemem } from 'node:os';
import { NoAdapterError } from './errors.js';
import type { Discovered, DiscoveryOptions } from './platform.js';

type DawnModule = { create(flags: string[]): GPU; globals: Record<string, unknown> };

let dawn: DawnModule | undefined;
function loadDawn(): DawnModule {
  if (!dawn) {
    const require = createRequire(import.meta.url);
    dawn = require('webgpu') as DawnModule;
    // WebGPU enums (GPUBufferUsage, GPUShaderStage, GPUMapMode) as the spec's globals.
    for (const [k, v] of Object.entries(dawn.globals)) {
      if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
    }
  }
  return dawn;
}

export function lavapipeIcds(): string[] {
  const dir = '/usr/share/vulkan/icd.d';
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => /^lvp_icd.*\.json$/.test(f))
    .map((f) => `${dir}/${f}`);
}

export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

async function tryCreate(flags: string[], power: GPUPowerPreference): Promise<{ gpu: GPU; adapter: GPUAdapter | null; error?: string }> {
  const gpu = loadDawn().create(flags);
  try {
    const adapter = await gpu.requestAdapter({ powerPreference: power });
    return { gpu, adapter };
  } catch (e) {
    return { gpu, adapter: null, error: (e as Error).message };
  }
}

export async function discoverAdapter(opts: DiscoveryOptions = {}): Promise<Discovered> {
  if (!process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = '/tmp';
  const adapterName = opts.adapter;
  const backend = opts.backend;
  const power = opts.powerPreference ?? 'high-performance';
  const flags: string[] = [];
  if (adapterName) flags.push(`adapter=${adapterName}`);
  if (backend) flags.push(`backend=${backend}`);
  if (opts.enableToggles?.length) flags.push(`enable-dawn-features=${opts.enableToggles.join(',')}`);

  const attempts: string[] = [];
  const userIcd = process.env.VK_ICD_FILENAMES;
  const describe = (what: string, r: { adapter: GPUAdapter | null; error?: string }) =>
    `${what}: ${r.adapter ? 'adapter found' : r.error ? `failed (${r.error})` : 'no adapter'}`;

  const first = await tryCreate(flags, power);
  attempts.push(
    describe(`default search${userIcd ? ` (VK_ICD_FILENAMES=${userIcd})` : ''}${flags.length ? ` [${flags.join(' ')}]` : ''}`, first),
  );
  if (first.adapter) return { gpu: first.gpu, adapter: first.adapter, backend: backend ?? platformBackend(), attempts, icd: userIcd };
  if (userIcd) throw new NoAdapterError(attempts);

  const fallbacks = [...lavapipeIcds(), ...(existsSync(SWIFTSHADER_ICD) ? [SWIFTSHADER_ICD] : [])];
  if (fallbacks.length === 0)
    attempts.push('lavapipe (/usr/share/vulkan/icd.d/lvp_icd*.json): not installed', `SwiftShader (${SWIFTSHADER_ICD}): not installed`);
  for (const icd of fallbacks) {
    process.env.VK_ICD_FILENAMES = icd;
    const r = await tryCreate(flags, power);
    attempts.push(describe(`VK_ICD_FILENAMES=${icd}`, r));
    if (r.adapter) return { gpu: r.gpu, adapter: r.adapter, backend: backend ?? platformBackend(), attempts, icd };
  }
  delete process.env.VK_ICD_FILENAMES;
  throw new NoAdapterError(attempts);
}

/** Dawn's default backend on this operating system (reported when the adapter info has none). */
function platformBackend(): string {
  return process.platform === 'darwin' ? 'metal' : process.platform === 'win32' ? 'd3d12' : 'vulkan';
}

/** Host memory available now (Linux: MemAvailable), for the software adapter's memory budget. */
export function hostAvailableMemory(): number {
  return freemem();
}
