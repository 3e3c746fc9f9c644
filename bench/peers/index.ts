/**
 * The peer engines (tfjs-webgpu, onnxruntime-web, jax-js), loaded into this process on the
 * runtime's own Dawn instance. A peer that fails to load is reported and left out; the suite goes on.
 */
import type { Runtime } from '../../src/gpu/runtime.js';
import type { Engine } from '../suite/engine.js';
import { peerVersion } from './dyn.js';
import { installBrowserShims } from './env.js';
import { jaxEngines } from './jax.js';
import { ortEngine } from './ort.js';
import { tfjsEngine } from './tfjs.js';

export async function loadPeers(rt: Runtime): Promise<{ engines: Engine[]; versions: Record<string, string> }> {
  installBrowserShims(rt);
  const engines: Engine[] = [];
  const versions: Record<string, string> = {};
  const load = async (names: string[], pkg: string, what: string, f: () => Promise<Engine[]>) => {
    let v = '?';
    try {
      v = await peerVersion(pkg);
      engines.push(...(await f()));
      for (const n of names) versions[n] = `${pkg} ${v} (${what})`;
    } catch (e) {
      const why = (e as Error).message.split('\n')[0];
      console.warn(`bench: peer ${pkg} ${v} failed to load: ${why}`);
      for (const n of names) versions[n] = `${pkg} ${v}: failed to load (${why})`;
    }
  };
  await load(['tfjs'], '@tensorflow/tfjs-backend-webgpu', 'WebGPU backend; gradients + tf.train.adam', async () => [await tfjsEngine()]);
  await load(['ort'], 'onnxruntime-web', 'WebGPU EP; inference only, host inputs, GPU outputs', async () => [await ortEngine()]);
  await load(['jax', 'jax-jit'], '@jax-js/jax', 'WebGPU; eager and jit; valueAndGrad', jaxEngines);
  return { engines, versions };
}
