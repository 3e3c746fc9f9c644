/** The WGSL of a product: the generator its configuration names, specialised on the spec. */
import { broadcastSource } from './broadcast.js';
import type { KernelSpec } from './epilogue.js';
import { registerSource } from './register.js';
import { sharedSource } from './shared.js';
import { splitKSource } from './splitk.js';

export function matmulSource(s: KernelSpec): string {
  const c = s.cfg;
  switch (c.kind) {
    case 'register':
      return registerSource(s, c);
    case 'shared':
      return sharedSource(s, c);
    case 'splitk':
      return splitKSource(s, c);
    case 'broadcast':
      return broadcastSource(s, c);
  }
}
