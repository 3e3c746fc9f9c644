/** A lost device turns the next operation into a thrown DeviceLostError (never a hang). */
import { expect, it } from 'vitest';
import { DeviceLostError } from '../../src/gpu/errors.js';
import { runtime } from '../../src/gpu/runtime.js';
import { tensor, toArray } from '../../src/tensor/creation.js';
import { useGpu } from '../helpers/setup.js';

useGpu();

it('operations after device loss throw DeviceLostError', async () => {
  const x = tensor([1, 2, 3]);
  expect(Array.from(await toArray(x))).toEqual([1, 2, 3]);
  // Simulates a lost device (driver reset, GPU removed) without shutting the runtime down.
  runtime().device.destroy();
  await new Promise((r) => setTimeout(r, 50));
  expect(() => tensor([4, 5])).toThrow(DeviceLostError);
  await expect(toArray(x)).rejects.toThrow(/device lost/);
});
