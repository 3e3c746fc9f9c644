/** RoPE kernel vs float64 (src/cpu rope), strided inputs, and the inverse rotation. Tolerance 1e-6 abs. */
import { describe, expect, it } from 'vitest';
import * as C from '../../src/cpu/index.js';
import { ropeInto } from '../../src/kernels/rope.js';
import { tensor, toArray } from '../../src/tensor/creation.js';
import { empty } from '../../src/tensor/tensor.js';
import { rope2dTables } from '../../src/nn/tables.js';
import { randomData, useGpu } from '../helpers/setup.js';

useGpu();

describe('ropeInto', () => {
  it('matches the float64 reference on [2, 3, 16, 8] and inverts', async () => {
    const shape = [2, 3, 16, 8];
    const data = randomData(2 * 3 * 16 * 8, 5);
    const { cos, sin } = rope2dTables(8, 4);
    const x = tensor(Float32Array.from(data), shape);
    const c = tensor(cos, [16, 8]);
    const s = tensor(sin, [16, 8]);
    const y = empty(shape);
    ropeInto(x, c, s, y);
    const want = C.rope(C.nd(data, shape), C.nd(cos, [16, 8]), C.nd(sin, [16, 8]));
    const cmp = C.compareArrays(await toArray(y), want.data, { atol: 1e-6, rtol: 1e-5, shape });
    expect(cmp.ok, cmp.message).toBe(true);
    const back = empty(shape);
    ropeInto(y, c, s, back, true);
    const inv = C.compareArrays(await toArray(back), data, { atol: 1e-5, rtol: 1e-5 });
    expect(inv.ok, inv.message).toBe(true);
  });

  it('reads a strided q view out of a fused [B, N, 3, H, D] buffer', async () => {
    const [B, N, H, D] = [2, 9, 3, 12];
    const data = randomData(B * N * 3 * H * D, 9);
    const qkv = tensor(Float32Array.from(data), [B, N, 3, H, D]);
    // k = qkv[:, :, 1] permuted to [B, H, N, D].
    const kView = { buffer: qkv.buffer, dtype: qkv.dtype, shape: [B, H, N, D], strides: [N * 3 * H * D, D, 3 * H * D, 1], offset: H * D };
    const cos = Float32Array.from(randomData(N * D, 1));
    const sin = Float32Array.from(randomData(N * D, 2));
    const out = empty([B, H, N, D]);
    ropeInto(kView, tensor(cos, [N, D]), tensor(sin, [N, D]), out);
    const k = C.permute(C.narrow(C.nd(data, [B, N, 3, H, D]), 2, 1, 1), [0, 2, 3, 1, 4]);
    const want = C.rope(C.reshape(k, [B, H, N, D]), C.nd(cos, [N, D]), C.nd(sin, [N, D]));
    const cmp = C.compareArrays(await toArray(out), want.data, { atol: 1e-6, rtol: 1e-5 });
    expect(cmp.ok, cmp.message).toBe(true);
  });
});
