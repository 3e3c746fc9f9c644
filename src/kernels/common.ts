/** Helpers shared by kernel generators: parameter packing, launch geometry, WGSL snippets. */
import { runtime } from '../gpu/runtime.js';
import type { DType } from '../core/dtype.js';

export const WG = 256;

/** Packs u32 / i32 / f32 values for a kernel's uniform block (array<vec4<u32>, n>). */
export class Params {
  private words: number[] = [];
  private f32 = new Float32Array(1);
  private u32 = new Uint32Array(this.f32.buffer);
  u(...v: number[]): this {
    for (const x of v) this.words.push(x >>> 0);
    return this;
  }
  i(...v: number[]): this {
    for (const x of v) this.words.push(x | 0);
    return this;
  }
  f(...v: number[]): this {
    for (const x of v) {
      this.f32[0] = x;
      this.words.push(this.u32[0]);
    }
    return this;
  }
  /** Pads to `n` words (n multiple of 4). */
  pad(n: number): this {
    while (this.words.length < n) this.words.push(0);
    return this;
  }
  get length(): number {
    return this.words.length;
  }
  build(): Uint32Array {
    const n = Math.max(4, Math.ceil(this.words.length / 4) * 4);
    const out = new Uint32Array(n);
    out.set(this.words.map((w) => w >>> 0));
    return out;
  }
}

/** WGSL declaration of the params uniform with `vec4s` vec4<u32> entries and accessors. */
export function paramsDecl(binding: number, vec4s: number): string {
  return `struct Params { v: array<vec4<u32>, ${vec4s}> }
@group(0) @binding(${binding}) var<uniform> P: Params;
fn pu(i: u32) -> u32 { return P.v[i / 4u][i % 4u]; }
fn pi(i: u32) -> i32 { return bitcast<i32>(P.v[i / 4u][i % 4u]); }
fn pf(i: u32) -> f32 { return bitcast<f32>(P.v[i / 4u][i % 4u]); }`;
}

/** `enable f16;` when any operand is f16. */
export function enables(dtypes: DType[]): string {
  return dtypes.includes('f16') ? 'enable f16;\n' : '';
}

/** A 1-D launch of `n` threads over at most 65535 workgroups per dimension. */
export function grid1d(n: number, wg = WG): [number, number] {
  const groups = Math.ceil(n / wg);
  const max = runtime().limits.maxComputeWorkgroupsPerDimension;
  if (groups <= max) return [Math.max(groups, 1), 1];
  const y = Math.ceil(groups / max);
  return [Math.ceil(groups / y), y];
}

/** WGSL for the flat thread index of a grid1d launch. */
export const FLAT_INDEX = `gid.x + gid.y * (nwg.x * WG)`;
