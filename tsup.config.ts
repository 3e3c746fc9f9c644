import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'src/index.ts', 'cli/main': 'src/cli/main.ts' },
  format: ['esm'],
  target: 'node20',
  platform: 'node',
  // The declarations name WebGPU's types (GPUBuffer, GPUDevice, …): point users' compilers at them.
  dts: { entry: { index: 'src/index.ts' }, banner: '/// <reference types="@webgpu/types" />' },
  sourcemap: true,
  clean: true,
  splitting: true,
  external: ['webgpu'],
});
