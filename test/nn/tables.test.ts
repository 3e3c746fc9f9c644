/**
 * The fixed tables the models build for themselves (2-D sin-cos position embeddings, 2-D RoPE
 * cos/sin) against the reference implementation's own tables stored in the golden fixtures, and
 * against the closed form on a non-square grid. The golden model tests overwrite these buffers
 * with loadStateDict, so without this file a wrong table would only show in from-scratch training.
 * Tolerance: 1e-6 absolute (the tables are f32 roundings of values in [−1, 1]: 6e-8 apart from the
 * reference's own f32 tables; a swapped sin/cos or a transposed grid is off by O(1)).
 */
import { describe, expect, it } from 'vitest';
import { toArray } from '../../src/tensor/creation.js';
import { rope2dTables, sincos2dTable } from '../../src/nn/tables.js';
import { DiTDH, type DiTConfig } from '../../src/models/dit.js';
import { RAEDecoder } from '../../src/models/rae-decoder.js';
import { loadGolden } from '../helpers/golden.js';
import { useGpu } from '../helpers/setup.js';

useGpu();

const ATOL = 1e-6;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const dec = loadGolden('rae_decoder_small');
const dh = loadGolden('ditdh_small');
const decCfg = dec.meta.config as Record<string, number>;
const dhCfg = dh.meta.config as unknown as DiTConfig;
const [bodyWidth, headWidth] = dhCfg.hidden_size as number[];
const [bodyHeads, headHeads] = dhCfg.num_heads as number[];
const dhGrid = dhCfg.input_size / (dhCfg.patch_size ?? 1);

function param(g: ReturnType<typeof loadGolden>, key: string): Float32Array {
  const p = g.params.get(key);
  if (!p) throw new Error(`fixture has no param.${key}`);
  return p.data as Float32Array;
}

describe('generated tables vs the reference implementation', () => {
  it('decoder_pos_embed: sincos2dTable with a zero CLS row', () => {
    const want = param(dec, 'decoder_pos_embed');
    const got = sincos2dTable(decCfg.dec_dim, decCfg.grid, decCfg.grid, 1);
    expect(maxAbsDiff(got, want)).toBeLessThan(ATOL);
    // The CLS row is all zeros and the table is not trivially zero elsewhere.
    expect(Math.max(...Array.from(got.subarray(0, decCfg.dec_dim), Math.abs))).toBe(0);
    expect(Math.max(...Array.from(want, Math.abs))).toBeGreaterThan(0.5);
  });

  it('DiT^DH pos_embed: sincos2dTable', () => {
    expect(maxAbsDiff(sincos2dTable(bodyWidth, dhGrid), param(dh, 'pos_embed'))).toBeLessThan(ATOL);
  });

  it('DiT^DH enc/dec RoPE tables: rope2dTables', () => {
    const enc = rope2dTables(bodyWidth / bodyHeads, dhGrid);
    expect(maxAbsDiff(enc.cos, param(dh, 'enc_feat_rope.freqs_cos'))).toBeLessThan(ATOL);
    expect(maxAbsDiff(enc.sin, param(dh, 'enc_feat_rope.freqs_sin'))).toBeLessThan(ATOL);
    const head = rope2dTables(headWidth / headHeads, dhGrid);
    expect(maxAbsDiff(head.cos, param(dh, 'dec_feat_rope.freqs_cos'))).toBeLessThan(ATOL);
    expect(maxAbsDiff(head.sin, param(dh, 'dec_feat_rope.freqs_sin'))).toBeLessThan(ATOL);
  });

  it('freshly built models hold the reference tables before any loadStateDict', async () => {
    const decoder = RAEDecoder.fromConfig({
      hidden_size: decCfg.enc_dim,
      decoder_hidden_size: decCfg.dec_dim,
      decoder_num_hidden_layers: decCfg.depth,
      decoder_num_attention_heads: decCfg.heads,
      decoder_intermediate_size: decCfg.mlp,
      patch_size: decCfg.patch,
      num_channels: 3,
      layer_norm_eps: decCfg.ln_eps,
      num_patches: decCfg.grid * decCfg.grid,
    });
    const dsd = decoder.stateDict();
    expect(maxAbsDiff(await toArray(dsd.get('decoder_pos_embed')!), param(dec, 'decoder_pos_embed'))).toBeLessThan(ATOL);
    decoder.dispose();

    const model = DiTDH.fromConfig(dhCfg);
    const sd = model.stateDict();
    for (const key of [
      'pos_embed',
      'enc_feat_rope.freqs_cos',
      'enc_feat_rope.freqs_sin',
      'dec_feat_rope.freqs_cos',
      'dec_feat_rope.freqs_sin',
    ]) {
      const t = sd.get(key);
      expect(t, `fresh DiTDH has no ${key}`).toBeDefined();
      expect(maxAbsDiff(await toArray(t!), param(dh, key)), key).toBeLessThan(ATOL);
    }
    model.dispose();
  });
});

describe('generated tables vs the closed form on a non-square grid', () => {
  // Independent float64 restatement (spec §3.2, §5.3): token (r, c) row-major; sin-cos: first half
  // encodes the column c, second half the row r, each as [sin(p·ω_k)…, cos(p·ω_k)…] with
  // ω_k = 10000^(−k/(d/4)); RoPE: half the head dim for the row, half for the column, frequencies
  // 10000^(−2k/(hd/2)) each repeated for an interleaved pair.
  const H = 3;
  const W = 5;

  it('sincos2dTable(dim 16, 3×5)', () => {
    const dim = 16;
    const q = dim / 4;
    const got = sincos2dTable(dim, H, W);
    let worst = 0;
    for (let r = 0; r < H; r++)
      for (let c = 0; c < W; c++)
        for (let k = 0; k < q; k++) {
          const w = 10000 ** (-k / q);
          const row = (r * W + c) * dim;
          const want = [Math.sin(c * w), Math.cos(c * w), Math.sin(r * w), Math.cos(r * w)];
          const at = [row + k, row + q + k, row + 2 * q + k, row + 3 * q + k];
          at.forEach((i, j) => (worst = Math.max(worst, Math.abs(got[i] - want[j]))));
        }
    expect(worst).toBeLessThan(ATOL);
  });

  it('rope2dTables(head dim 16, 3×5)', () => {
    const hd = 16;
    const half = hd / 2;
    const { cos, sin } = rope2dTables(hd, H, W);
    let worst = 0;
    for (let r = 0; r < H; r++)
      for (let c = 0; c < W; c++)
        for (let i = 0; i < half; i++) {
          const f = 10000 ** (-(2 * Math.floor(i / 2)) / half);
          const base = (r * W + c) * hd;
          worst = Math.max(
            worst,
            Math.abs(cos[base + i] - Math.cos(r * f)),
            Math.abs(sin[base + i] - Math.sin(r * f)),
            Math.abs(cos[base + half + i] - Math.cos(c * f)),
            Math.abs(sin[base + half + i] - Math.sin(c * f)),
          );
        }
    expect(worst).toBeLessThan(ATOL);
  });

  it('rejects dimensions the layout cannot split', () => {
    expect(() => sincos2dTable(18, 2)).toThrow(RangeError);
    expect(() => rope2dTables(18, 2)).toThrow(RangeError);
  });
});
