/**
 * Named kernel parameters: the layout follows WGSL's uniform rules (checked on the device by a
 * kernel that copies every field back out), packing is by name, and bad values are errors.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { init, runtime } from '../../src/gpu/runtime.js';
import { uniforms } from '../../src/kernels/uniforms.js';
import { toArray } from '../../src/tensor/creation.js';
import { empty } from '../../src/tensor/tensor.js';

beforeAll(async () => {
  await init();
});

describe('uniforms', () => {
  it('generates a struct with scalar, vector and counted fields', () => {
    const P = uniforms({ n: 'u32', alpha: 'f32', v: 'vec4<f32>', stride: ['i32', 2] });
    expect(P.wgsl(3)).toBe(`struct Params {
  n: u32,
  alpha: f32,
  v: vec4<f32>,
  stride_0: i32,
  stride_1: i32,
}
@group(0) @binding(3) var<uniform> params: Params;`);
    // v aligns to 16 bytes; the struct rounds up to a multiple of 16.
    expect(P.byteSize).toBe(48);
    const words = P.pack({ n: 7, alpha: 0.5, v: [1, 2, 3, 4], stride: [-1, 5] });
    expect(Array.from(words)).toEqual([
      7,
      new Uint32Array(new Float32Array([0.5]).buffer)[0],
      0,
      0,
      ...new Uint32Array(new Float32Array([1, 2, 3, 4]).buffer),
      0xffffffff,
      5,
      0,
      0,
    ]);
  });

  it('rejects missing, unknown and out-of-range values, and layouts over the uniform slot', () => {
    const P = uniforms({ n: 'u32', k: 'i32', s: ['u32', 2] });
    expect(() => P.pack({ n: 1, k: 0 } as never)).toThrow(/missing value for 's'/);
    expect(() => P.pack({ n: 1, k: 0, s: [1, 2], extra: 3 } as never)).toThrow(/unknown field\(s\) extra/);
    expect(() => P.pack({ n: 1.5, k: 0, s: [1, 2] })).toThrow(/'n' \(u32\) got 1.5/);
    expect(() => P.pack({ n: 2 ** 32, k: 0, s: [1, 2] })).toThrow(/'n'/);
    expect(() => P.pack({ n: 1, k: 2 ** 31, s: [1, 2] })).toThrow(/'k' \(i32\)/);
    expect(() => P.pack({ n: 1, k: 0, s: [1] })).toThrow(/'s' takes 2 values/);
    // A negative u32 wraps (strides added in u32 arithmetic stay exact modulo 2³²).
    expect(P.pack({ n: -3, k: -3, s: [0, 0] })[0]).toBe(2 ** 32 - 3);
    expect(() => uniforms({ big: ['u32', 65] })).toThrow(/exceed the 256-byte uniform slot/);
    expect(() => uniforms({ 'bad name': 'u32' })).toThrow(/not a WGSL identifier/);
  });

  it('matches the layout WGSL gives the struct: a kernel reads back every field', async () => {
    const P = uniforms({ a: 'u32', b: 'f32', c: 'vec2<u32>', d: 'i32', e: 'vec4<f32>', f: ['u32', 3], g: 'f32' });
    const values = { a: 11, b: 2.5, c: [12, 13], d: -14, e: [0.25, 1.5, -2, 3], f: [15, 16, 17], g: -0.125 };
    const out = empty([16], 'f32');
    const rt = runtime();
    rt.dispatch(
      {
        key: 'test|uniform-layout',
        bindings: ['write', 'uniform'],
        wgsl: () => `@group(0) @binding(0) var<storage, read_write> out: array<f32>;
${P.wgsl(1)}
@compute @workgroup_size(1)
fn main() {
  out[0] = f32(params.a); out[1] = params.b; out[2] = f32(params.c.x); out[3] = f32(params.c.y);
  out[4] = f32(params.d); out[5] = params.e.x; out[6] = params.e.y; out[7] = params.e.z; out[8] = params.e.w;
  out[9] = f32(params.f_0); out[10] = f32(params.f_1); out[11] = f32(params.f_2); out[12] = params.g;
}`,
      },
      [out.buffer],
      [1],
      P.pack(values),
    );
    const got = Array.from(await toArray(out)).slice(0, 13);
    expect(got).toEqual([11, 2.5, 12, 13, -14, 0.25, 1.5, -2, 3, 15, 16, 17, -0.125]);
    out.dispose();
  });
});
