/** Errors raised by the GPU runtime. Each names the operation that caused it. */

export class GpuError extends Error {
  constructor(message: string, readonly op?: string) {
    super(op ? `${op}: ${message}` : message);
    this.name = 'GpuError';
  }
}

/** No WebGPU adapter could be found; the message lists everything tried. */
export class NoAdapterError extends GpuError {
  constructor(readonly attempts: string[]) {
    super(
      [
        'no WebGPU adapter found. Tried:',
        ...attempts.map((a) => `  - ${a}`),
        'To run without a GPU install Mesa lavapipe (software Vulkan). On Debian 12:',
        '  echo "deb http://deb.debian.org/debian bookworm-backports main" > /etc/apt/sources.list.d/backports.list',
        '  apt-get update && apt-get install -y libvulkan1 && apt-get install -y -t bookworm-backports mesa-vulkan-drivers',
        "(Debian 12's own Mesa 22.x lavapipe is rejected by Dawn; `npm run setup` does this for you.)",
        'Or pick an adapter explicitly with init({ adapter }) / RAE_ADAPTER, or an ICD with VK_ICD_FILENAMES.',
      ].join('\n'),
    );
    this.name = 'NoAdapterError';
  }
}

export class DeviceLostError extends GpuError {
  constructor(reason: string, message: string) {
    super(`device lost (${reason}): ${message}`);
    this.name = 'DeviceLostError';
  }
}
