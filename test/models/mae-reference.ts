/**
 * Float64 reference of the MAE loss and latent, written with plain loops and independently of
 * src/models/mae.ts: it unshuffles, as MAE's code does (visible tokens and mask tokens placed at
 * their natural positions, decoder run in natural order), where the engine keeps shuffled order.
 */
import { geluScalar } from '../../src/cpu/elementwise.js';
import type { MaeConfig } from '../../src/models/mae.js';

export type Params = Map<string, Float64Array>;
type Mat = Float64Array[]; // rows

function linear(x: Mat, w: Float64Array, b: Float64Array | undefined, out: number): Mat {
  const inF = x[0].length;
  return x.map((row) => {
    const y = new Float64Array(out);
    for (let o = 0; o < out; o++) {
      let s = b ? b[o] : 0;
      for (let i = 0; i < inF; i++) s += w[o * inF + i] * row[i];
      y[o] = s;
    }
    return y;
  });
}

function layerNorm(x: Mat, w: Float64Array | null, b: Float64Array | null, eps: number): Mat {
  return x.map((row) => {
    const n = row.length;
    let mu = 0;
    for (const v of row) mu += v;
    mu /= n;
    let va = 0;
    for (const v of row) va += (v - mu) ** 2;
    va /= n;
    const inv = 1 / Math.sqrt(va + eps);
    return row.map((v, i) => (v - mu) * inv * (w ? w[i] : 1) + (b ? b[i] : 0));
  });
}

function attention(x: Mat, p: Params, pre: string, heads: number): Mat {
  const D = x[0].length;
  const hd = D / heads;
  const qkv = linear(x, p.get(`${pre}.qkv.weight`)!, p.get(`${pre}.qkv.bias`), 3 * D);
  const T = x.length;
  const out: Mat = Array.from({ length: T }, () => new Float64Array(D));
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < T; i++) {
      const s = new Float64Array(T);
      let m = -Infinity;
      for (let j = 0; j < T; j++) {
        let d = 0;
        for (let k = 0; k < hd; k++) d += qkv[i][h * hd + k] * qkv[j][D + h * hd + k];
        s[j] = d / Math.sqrt(hd);
        m = Math.max(m, s[j]);
      }
      let z = 0;
      for (let j = 0; j < T; j++) {
        s[j] = Math.exp(s[j] - m);
        z += s[j];
      }
      for (let j = 0; j < T; j++) for (let k = 0; k < hd; k++) out[i][h * hd + k] += (s[j] / z) * qkv[j][2 * D + h * hd + k];
    }
  }
  return linear(out, p.get(`${pre}.proj.weight`)!, p.get(`${pre}.proj.bias`), D);
}

const addM = (a: Mat, b: Mat): Mat => a.map((r, i) => r.map((v, j) => v + b[i][j]));

function block(x: Mat, p: Params, pre: string, heads: number, mlp: number, eps: number): Mat {
  const D = x[0].length;
  const a = attention(layerNorm(x, p.get(`${pre}.norm1.weight`)!, p.get(`${pre}.norm1.bias`)!, eps), p, `${pre}.attn`, heads);
  const h = addM(x, a);
  const n2 = layerNorm(h, p.get(`${pre}.norm2.weight`)!, p.get(`${pre}.norm2.bias`)!, eps);
  const f1 = linear(n2, p.get(`${pre}.mlp.fc1.weight`)!, p.get(`${pre}.mlp.fc1.bias`), mlp).map((r) => r.map(geluScalar));
  return addM(h, linear(f1, p.get(`${pre}.mlp.fc2.weight`)!, p.get(`${pre}.mlp.fc2.bias`), D));
}

/** MAE's 2-D sin-cos table: first half of the channels from the column, second from the row. */
export function refPosTable(dim: number, grid: number): Mat {
  const q = dim / 4;
  const omega = Array.from({ length: q }, (_, k) => 1 / 10000 ** (k / q));
  const rows: Mat = [];
  for (let r = 0; r < grid; r++)
    for (let col = 0; col < grid; col++) {
      const e = new Float64Array(dim);
      omega.forEach((w, k) => {
        e[k] = Math.sin(col * w);
        e[q + k] = Math.cos(col * w);
        e[2 * q + k] = Math.sin(r * w);
        e[3 * q + k] = Math.cos(r * w);
      });
      rows.push(e);
    }
  return rows;
}

/** Patch t = (row i, col j) of image b as (pi·p + pj)·C + c. */
export function refPatches(x: Float64Array, B: number, C: number, S: number, p: number): Mat[] {
  const g = S / p;
  return Array.from({ length: B }, (_, b) =>
    Array.from({ length: g * g }, (_, t) => {
      const i = Math.floor(t / g);
      const j = t % g;
      const v = new Float64Array(p * p * C);
      for (let pi = 0; pi < p; pi++)
        for (let pj = 0; pj < p; pj++)
          for (let c = 0; c < C; c++) v[(pi * p + pj) * C + c] = x[((b * C + c) * S + i * p + pi) * S + j * p + pj];
      return v;
    }),
  );
}

function encode(cfg: MaeConfig, p: Params, patches: Mat, ids: number[]): Mat {
  const D = cfg.hidden_size;
  const pos = refPosTable(D, cfg.image_size / cfg.patch_size);
  const emb = linear(
    ids.map((t) => patches[t]),
    p.get('encoder.patch_embed.weight')!,
    p.get('encoder.patch_embed.bias'),
    D,
  ).map((r, k) => r.map((v, j) => v + pos[ids[k]][j]));
  let h: Mat = [Float64Array.from(p.get('encoder.cls_token')!), ...emb];
  for (let l = 0; l < cfg.num_hidden_layers; l++)
    h = block(h, p, `encoder.blocks.${l}`, cfg.num_attention_heads, Math.trunc(D * cfg.mlp_ratio), cfg.layer_norm_eps);
  return h;
}

/** RAE latent of one image: LN without affine (eps 1e-6) of the encoder's last hidden state, CLS dropped. */
export function refLatent(cfg: MaeConfig, p: Params, patches: Mat): Mat {
  const h = encode(
    cfg,
    p,
    patches,
    patches.map((_, i) => i),
  );
  return layerNorm(h, null, null, 1e-6).slice(1);
}

/** Loss of one sample: `order` lists visible then masked patch indices. */
export function refSampleLoss(cfg: MaeConfig, p: Params, patches: Mat, order: number[], visible: number): number {
  const N = patches.length;
  const vis = order.slice(0, visible);
  const eps = cfg.layer_norm_eps;
  const h = layerNorm(encode(cfg, p, patches, vis), p.get('encoder.norm.weight')!, p.get('encoder.norm.bias')!, eps);
  const Dd = cfg.decoder_hidden_size;
  const e = linear(h, p.get('decoder.decoder_embed.weight')!, p.get('decoder.decoder_embed.bias'), Dd);
  const dpos = refPosTable(Dd, cfg.image_size / cfg.patch_size);
  // Unshuffle: natural order, mask token where a patch was hidden.
  const seq: Mat = Array.from({ length: N }, () => Float64Array.from(p.get('decoder.mask_token')!));
  vis.forEach((t, k) => {
    seq[t] = e[1 + k];
  });
  let d: Mat = [e[0], ...seq.map((r, t) => r.map((v, j) => v + dpos[t][j]))];
  for (let l = 0; l < cfg.decoder_num_hidden_layers; l++)
    d = block(d, p, `decoder.decoder_blocks.${l}`, cfg.decoder_num_attention_heads, Math.trunc(Dd * cfg.mlp_ratio), eps);
  const P = patches[0].length;
  const pred = linear(
    layerNorm(d, p.get('decoder.decoder_norm.weight')!, p.get('decoder.decoder_norm.bias')!, eps),
    p.get('decoder.decoder_pred.weight')!,
    p.get('decoder.decoder_pred.bias'),
    P,
  ).slice(1);
  let total = 0;
  const masked = order.slice(visible);
  for (const t of masked) {
    const tgt = patches[t];
    const mu = tgt.reduce((a, b) => a + b, 0) / P;
    const va = tgt.reduce((a, b) => a + (b - mu) ** 2, 0) / (P - 1);
    for (let k = 0; k < P; k++) total += (pred[t][k] - (tgt[k] - mu) / Math.sqrt(va + 1e-6)) ** 2;
  }
  return total / (masked.length * P);
}
