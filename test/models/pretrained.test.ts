/** Loading HF snapshot directories (single file and sharded) written from the golden fixture. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { saveSafetensors } from '../../src/io/safetensors.js';
import { loadDinov2 } from '../../src/io/pretrained.js';
import { Dinov2WithRegisters } from '../../src/models/dinov2.js';
import { tensor, toArray } from '../../src/tensor/creation.js';
import { expectAllclose, TOL } from '../helpers/compare.js';
import { loadGolden } from '../helpers/golden.js';
import { useGpu } from '../helpers/setup.js';

useGpu();

const g = loadGolden('dinov2_reg_small');
const params = Object.fromEntries([...g.params].map(([k, v]) => [k, { shape: [...v.shape], data: v.data as Float32Array }]));

function snapshot(sharded: boolean, prefix = ''): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'hf-snapshot-'));
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(g.meta.config));
  const named = Object.fromEntries(Object.entries(params).map(([k, v]) => [prefix + k, v]));
  if (!sharded) saveSafetensors(path.join(dir, 'model.safetensors'), named);
  else {
    const keys = Object.keys(named).sort();
    const half = Math.ceil(keys.length / 2);
    const shards = [keys.slice(0, half), keys.slice(half)];
    const weightMap: Record<string, string> = {};
    shards.forEach((ks, i) => {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      saveSafetensors(path.join(dir, file), Object.fromEntries(ks.map((k) => [k, named[k]])));
      for (const k of ks) weightMap[k] = file;
    });
    writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
  }
  return dir;
}

describe('loadDinov2 from a Hugging Face snapshot directory', () => {
  for (const [label, sharded, prefix] of [
    ['model.safetensors', false, ''],
    ['sharded with an index', true, ''],
    ['keys prefixed with dinov2.', false, 'dinov2.'],
  ] as const) {
    it(`${label}: same outputs as the reference`, async () => {
      const model = loadDinov2(snapshot(sharded, prefix));
      expect(model).toBeInstanceOf(Dinov2WithRegisters);
      const px = g.inputs.get('pixel_values')!;
      const out = await toArray(model.forward(tensor(px.data, px.shape)));
      expectAllclose(out, g.outputs.get('last_hidden_state')!.data, TOL.modelForward);
      model.dispose();
    });
  }

  it('a missing directory or config gives a clear error', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hf-empty-'));
    expect(() => loadDinov2(dir)).toThrow(/config.json not found/);
    writeFileSync(path.join(dir, 'config.json'), JSON.stringify(g.meta.config));
    expect(() => loadDinov2(dir)).toThrow(/model.safetensors/);
  });
});
