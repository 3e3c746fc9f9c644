/** Placeholder replaced below. */
import type { Runtime } from '../../src/gpu/runtime.js';
import type { Engine } from '../suite/engine.js';
export async function loadPeers(_rt: Runtime): Promise<{ engines: Engine[]; versions: Record<string, string> }> {
  return { engines: [], versions: {} };
}
