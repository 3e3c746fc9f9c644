/**
 * Pacing long loops for layers above the tensor layer (samplers, evaluation), which do not reach
 * the GPU runtime themselves. Dawn reclaims finished GPU work only while the event loop turns, so
 * a loop that records steps must give it a turn now and then; see Runtime.yieldIfBusy.
 */
import { runtime } from '../gpu/runtime.js';

/** Resolves at once while little work is in flight; otherwise waits until the GPU catches up. */
export function yieldIfBusy(): Promise<void> {
  return runtime().yieldIfBusy();
}
