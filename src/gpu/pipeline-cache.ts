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
  /** What a fusion pass of a recorded step needs to know of the kernel (elementwise maps: src/kernels/fusion.ts). */
  fuse?: unknown;
}

export interface CompiledKernel {
  key: string;
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  source: string;
}

/** Called once per compiled kernel (RAE_DUMP_WGSL writes files through it; see kernel-dump.ts). */
export type KernelCompiledHook = (kernel: { key: string; source: string; compileMs: number }) => void;

export interface PipelineCacheOptions {
  onKernelCompiled?: KernelCompiledHook;
  /**
   * Regenerate the source on every cache hit and throw when it differs from the compiled one: a
   * key that maps to two sources means the key misses something the generator depends on.
   */
  checkKeys?: boolean;
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

  constructor(
    private device: GPUDevice,
    private readonly opts: PipelineCacheOptions = {},
  ) {}

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
    if (k) {
      if (this.opts.checkKeys) this.checkSameSource(k, src);
      return k;
    }
    const layoutKey = src.bindings.join(',');
    let layout = this.layouts.get(layoutKey);
    if (!layout) {
      layout = this.device.createBindGroupLayout({
        label: `layout(${layoutKey})`,
        entries: src.bindings.map((kind, binding) => ({
          binding,
          visibility: GPUShaderStage.COMPUTE,
          // The uniform's offset is dynamic: one bind group serves every slot of the uniform arena,
          // so repeated dispatches on the same buffers reuse it (the runtime's bind-group cache).
          buffer:
            kind === 'uniform'
              ? { type: 'uniform' as const, hasDynamicOffset: true }
              : { type: kind === 'read' ? ('read-only-storage' as const) : ('storage' as const) },
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
    const ms = performance.now() - t0;
    this.compileMs += ms;
    this.opts.onKernelCompiled?.({ key: src.key, source, compileMs: ms });
    return k;
  }

  private checkSameSource(k: CompiledKernel, src: KernelSource): void {
    const again = src.wgsl();
    if (again === k.source) return;
    const a = k.source.split('\n');
    const b = again.split('\n');
    let line = 0;
    while (line < a.length && a[line] === b[line]) line++;
    throw new Error(
      `pipeline cache: key '${src.key}' maps to two different WGSL sources (first difference at line ${line + 1}:\n` +
        `  compiled: ${a[line] ?? '<end>'}\n  now:      ${b[line] ?? '<end>'}); the key must name everything the generator depends on`,
    );
  }
}
