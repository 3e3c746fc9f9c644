/** `rae info`: what adapter was found, what it can do, and whether a kernel agrees with the CPU. */
import { init, shutdown } from '../gpu/runtime.js';
import { matmul } from '../cpu/linalg.js';
import { nd } from '../cpu/ndarray.js';
import { compareArrays } from '../cpu/allclose.js';
import '../autograd/methods.js';
import { randn, toArray } from '../tensor/creation.js';
import { scopeAsync } from '../tensor/scope.js';
import * as ops from '../autograd/ops/index.js';

const LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
  'minUniformBufferOffsetAlignment',
] as const;

export async function runInfo(args: string[]): Promise<number> {
  const json = args.includes('--json');
  const rt = await init();
  const a = rt.adapterSummary;
  const limits = Object.fromEntries(LIMITS.map((k) => [k, rt.limits[k]]));
  const check = await selfCheck();
  const report = { adapter: a, features: [...rt.features].sort(), limits, selfCheck: check };
  if (json) console.log(JSON.stringify(report, null, 2));
  else {
    console.log(`adapter      ${a.description || a.device} (${a.vendor}, ${a.architecture})`);
    console.log(`backend      ${a.backend}${a.icd ? `  ICD ${a.icd}` : ''}`);
    console.log(`search       ${a.attempts.join('; ')}`);
    console.log(`features     ${report.features.join(', ')}`);
    for (const [k, v] of Object.entries(limits)) console.log(`${k.padEnd(36)} ${v}`);
    console.log(
      `self-check   ${check.ok ? 'PASS' : 'FAIL'}: ${check.what} max |err| ${check.maxAbsErr.toExponential(2)} (tolerance ${check.tolerance})`,
    );
  }
  shutdown();
  return check.ok ? 0 : 1;
}

/** A 65×127 · 127×33 matmul + bias + GELU on the GPU vs the float64 reference. */
async function selfCheck(): Promise<{ ok: boolean; what: string; maxAbsErr: number; tolerance: string }> {
  const [M, K, N] = [65, 127, 33];
  return scopeAsync(async () => {
    const a = randn([M, K], { seed: 1 });
    const b = randn([K, N], { seed: 2 });
    const [ha, hb] = [await toArray(a), await toArray(b)];
    const got = await toArray(ops.matmul(a, b));
    const ref = matmul(nd(Float64Array.from(ha), [M, K]), nd(Float64Array.from(hb), [K, N]));
    const cmp = compareArrays(got, ref.data, { atol: 1e-4, rtol: 1e-4 });
    return { ok: cmp.ok, what: `matmul ${M}×${K}·${K}×${N} f32 vs float64`, maxAbsErr: cmp.maxAbsErr, tolerance: 'atol 1e-4 + rtol 1e-4' };
  });
}
