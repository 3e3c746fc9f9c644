/**
 * Compiled pipelines keyed by everything a kernel was specialised on. A kernel's key is built
 * next to its WGSL generator; this cache only guarantees each key compiles once.
 */

export type BindingKind = 'read' | 'write' | 'uniform';

export interface KernelSource {
  /** Unique for the generated source: op name + every specialisation parameter. */
  key: string;
  /** Storage/uniform bindings in binding order (group 0). */
  bindings: BindingKind[];
  /** Generates the WGSL. Called once per key. */
  wgsl: () => string;
  entryPoint?: string;
}

export interface CompiledKernel {
  key: string;
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  source: string;
}

export function numberedSource(src: string): string {
  return src
    .split('\n')
    .map((l, i) => `${String(i + 1).padStart(4)}| ${l}`)
    .join('\n');
}

export class PipelineCache {
  private pipelines = new Map<string, CompiledKernel>();
  private layouts = new Map<string, GPUBindGroupLayout>();
  compiled = 0;
  /** Wall time spent creating pipelines (shader compilation), milliseconds. */
  compileMs = 0;

  constructor(private device: GPUDevice) {}

  get size(): number {
    return this.pipelines.size;
  }

  /** Source of the kernel whose label appears in a Dawn error message, for diagnostics. */
  sourceForMessage(message: string): { key: string; source: string } | undefined {
    // Dawn names objects by their label in double quotes. Errors can arrive while the pipeline
    // is still being created, so sources are looked up in their own map.
    for (const [key, source] of this.sources) if (message.includes(`"${key}"`)) return { key, source };
    return undefined;
  }
  private sources = new Map<string, string>();

  get(src: KernelSource): CompiledKernel {
    let k = this.pipelines.get(src.key);
    if (k) return k;
    const layoutKey = src.bindings.join(',');
    let layout = this.layouts.get(layoutKey);
    if (!layout) {
      layout = this.device.createBindGroupLayout({
        label: `layout(${layoutKey})`,
        entries: src.bindings.map((kind, binding) => ({
          binding,
          visibility: GPUShaderStage.COMPUTE,
          buffer: { type: kind === 'uniform' ? 'uniform' : kind === 'read' ? 'read-only-storage' : 'storage' },
        })),
      });
      this.layouts.set(layoutKey, layout);
    }
    const t0 = performance.now();
    const source = src.wgsl();
    this.sources.set(src.key, source);
    const module = this.device.createShaderModule({ label: src.key, code: source });
    const pipeline = this.device.createComputePipeline({
      label: src.key,
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: src.entryPoint ?? 'main' },
    });
    k = { key: src.key, pipeline, layout, source };
    this.pipelines.set(src.key, k);
    this.compiled++;
    this.compileMs += performance.now() - t0;
    if (process.env.RAE_LOG_COMPILES === '1') console.error(`compiled ${src.key} in ${(performance.now() - t0).toFixed(0)} ms`);
    return k;
  }
}
