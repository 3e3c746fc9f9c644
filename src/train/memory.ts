/**
 * A memory estimate made before the first step. WebGPU exposes no total-memory figure, but it does
 * cap every single buffer (maxStorageBufferBindingSize / maxBufferSize): the largest activations
 * of a step (attention scores, MLP hidden states, encoder inputs) must each fit in one buffer.
 * A configuration that cannot fit is refused up front with the option to change, instead of
 * failing with a device error mid-run.
 */
import { runtime } from '../gpu/runtime.js';
import type { RunConfig } from './config.js';
import type { EncoderInfo } from './context.js';
import { RunError } from './run-folder.js';

interface Buffer {
  what: string;
  bytes: number;
  option: string;
}

export function largestBuffers(stage: 'decoder' | 'dit' | 'sample', c: RunConfig, enc: EncoderInfo): Buffer[] {
  const B = stage === 'decoder' ? c.decoder.batch : stage === 'dit' ? c.dit.batch : Math.min(c.sample.count, 64) * 2;
  const N = enc.grid * enc.grid;
  const encTokens = enc.tokens;
  const encHeads = enc.heads;
  const out: Buffer[] = [
    { what: `encoder input [${B}, 3, ${enc.inputSize}, ${enc.inputSize}]`, bytes: 4 * B * 3 * enc.inputSize ** 2, option: '--batch' },
    {
      what: `encoder attention scores [${B}·${encHeads}, ${encTokens}, ${encTokens}]`,
      bytes: 4 * B * encHeads * encTokens ** 2,
      option: '--batch',
    },
    { what: `encoder MLP [${B}, ${encTokens}, ${4 * enc.dim}]`, bytes: 4 * B * encTokens * 4 * enc.dim, option: '--batch' },
  ];
  if (stage === 'decoder') {
    const d = c.decoder;
    out.push(
      { what: `decoder attention scores [${B}·${d.heads}, ${N + 1}, ${N + 1}]`, bytes: 4 * B * d.heads * (N + 1) ** 2, option: '--batch' },
      { what: `decoder MLP [${B}, ${N + 1}, ${d.mlp}]`, bytes: 4 * B * (N + 1) * d.mlp, option: '--batch (or decoder.mlp)' },
    );
  } else {
    const widths = c.dit.hidden;
    const heads = Math.max(...c.dit.heads);
    const w = Math.max(...widths);
    out.push(
      { what: `DiT attention scores [${B}·${heads}, ${N}, ${N}]`, bytes: 4 * B * heads * N * N, option: '--batch' },
      {
        what: `DiT MLP [${B}, ${N}, ${Math.round(w * c.dit.mlpRatio)}]`,
        bytes: 4 * B * N * Math.round(w * c.dit.mlpRatio) * 2,
        option: '--batch (or dit.hidden)',
      },
    );
  }
  return out;
}

export function checkMemory(stage: 'decoder' | 'dit' | 'sample', c: RunConfig, enc: EncoderInfo, limitOverride?: number): void {
  const L = runtime().limits;
  const limit = limitOverride ?? Math.min(L.maxStorageBufferBindingSize, L.maxBufferSize);
  const worst = largestBuffers(stage, c, enc).sort((a, b) => b.bytes - a.bytes)[0];
  if (worst.bytes > limit) {
    const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
    throw new RunError(
      `${stage}: the ${worst.what} needs ${mib(worst.bytes)} in one buffer, above this adapter's ${mib(limit)} limit (maxStorageBufferBindingSize); lower ${worst.option}`,
    );
  }
}
