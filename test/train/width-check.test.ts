/**
 * The width rule where models are built (paper §4.1): a DiT narrower than the token dimension
 * n = in_channels·patch², or a DiT^DH whose DDT head is, is refused with an error citing the
 * requirement unless allowNarrow; a DiT^DH may have a narrow body (the paper's DiT^DH-S: 384-wide
 * body on 768-dim tokens) as long as its head is wide enough.
 */
import { describe, expect, it } from 'vitest';
import { DiT, DiTDH } from '../../src/models/dit.js';
import { useGpu } from '../helpers/setup.js';

useGpu();

const base = { input_size: 4, num_classes: 3 };

describe('width ≥ token dimension', () => {
  it('DiT: refused below n = C·p², built at n or with allowNarrow', () => {
    expect(() => DiT.fromConfig({ ...base, patch_size: 2, in_channels: 8, hidden_size: 16, depth: 1, num_heads: 2 })).toThrow(
      /model width 16 is below the token dimension 32.*§4\.1/,
    );
    DiT.fromConfig({ ...base, patch_size: 2, in_channels: 8, hidden_size: 32, depth: 1, num_heads: 2 }).dispose();
    DiT.fromConfig({ ...base, patch_size: 2, in_channels: 8, hidden_size: 16, depth: 1, num_heads: 2 }, { allowNarrow: true }).dispose();
  });

  it('DiT^DH: the head must cover n, the body may be narrower', () => {
    expect(() => DiTDH.fromConfig({ ...base, in_channels: 32, hidden_size: [64, 16], depth: [1, 1], num_heads: [2, 2] })).toThrow(
      /DiTDH: head width 16 is below the token dimension 32/,
    );
    DiTDH.fromConfig({ ...base, in_channels: 32, hidden_size: [16, 32], depth: [1, 1], num_heads: [2, 2] }).dispose();
    DiTDH.fromConfig(
      { ...base, in_channels: 32, hidden_size: [64, 16], depth: [1, 1], num_heads: [2, 2] },
      { allowNarrow: true },
    ).dispose();
  });
});
