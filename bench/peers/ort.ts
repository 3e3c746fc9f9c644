/**
 * onnxruntime-web 1.30 with the WebGPU execution provider, on the inference cases (ONNX graphs
 * from onnx.ts). Inputs are fed from host memory each call (ORT's ordinary use); outputs stay on
 * the GPU ('gpu-buffer'), so the timing has no read-back.
 */
import { type Engine, type Prepared, UnsupportedCase } from '../suite/engine.js';
import type { BenchCase, Input } from '../suite/spec.js';
import { type Dyn, importPeer } from './dyn.js';
import { type Node, onnxModel } from './onnx.js';

/** dawn.node's writeBuffer rejects views on a SharedArrayBuffer (ORT's wasm heap): copy those first. */
function copySharedWrites(): void {
  const proto = (globalThis as Dyn).GPUQueue?.prototype;
  if (!proto || proto.__benchSharedCopy) return;
  const write = proto.writeBuffer;
  proto.writeBuffer = function (this: GPUQueue, ...args: Dyn[]) {
    const data = args[2];
    if (!(data?.buffer instanceof SharedArrayBuffer)) return write.apply(this, args);
    // Offsets and sizes count elements of a typed array; the copy is bytes.
    const unit = data.BYTES_PER_ELEMENT ?? 1;
    const copy = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
    const rest = args.slice(3).map((v: number | undefined) => (v === undefined ? v : v * unit));
    // Arguments are passed as given: dawn.node reads an explicit undefined differently from an absent one.
    return write.call(this, args[0], args[1], copy, ...rest);
  };
  proto.__benchSharedCopy = true;
}

function graphFor(c: BenchCase, inputs: Input[]): { model: Uint8Array; output: [string, number[]] } {
  const op = c.op;
  const ins = inputs.map((i): [string, number[]] => [i.name, i.shape]);
  const build = (nodes: Node[], out: number[]) => ({
    model: onnxModel(ins, [['out', out]], nodes),
    output: ['out', out] as [string, number[]],
  });
  switch (op.kind) {
    case 'matmul':
      return build(
        [{ op: 'Gemm', inputs: ['A', 'B'], outputs: ['out'], attrs: { transA: op.transA ? 1 : 0, transB: op.transB ? 1 : 0 } }],
        [op.M, op.N],
      );
    case 'softmax':
      return build([{ op: 'Softmax', inputs: ['x'], outputs: ['out'], attrs: { axis: -1 } }], [op.T, op.W]);
    case 'layerNorm':
      return build(
        [{ op: 'LayerNormalization', inputs: ['x', 'weight', 'bias'], outputs: ['out'], attrs: { axis: -1, epsilon: { f: 1e-5 } } }],
        [op.T, op.W],
      );
    case 'rmsNorm':
      // Opset 17 has no RMSNormalization: the composition ORT's optimizer fuses (SimplifiedLayerNormalization).
      return build(
        [
          { op: 'Mul', inputs: ['x', 'x'], outputs: ['sq'] },
          { op: 'ReduceMean', inputs: ['sq'], outputs: ['ms'], attrs: { axes: [-1], keepdims: 1 } },
          { op: 'Add', inputs: ['ms', 'eps'], outputs: ['mse'] },
          { op: 'Sqrt', inputs: ['mse'], outputs: ['rms'] },
          { op: 'Div', inputs: ['x', 'rms'], outputs: ['xn'] },
          { op: 'Mul', inputs: ['xn', 'weight'], outputs: ['out'] },
        ],
        [op.T, op.W],
      );
    case 'attention': {
      if (op.backward) throw new UnsupportedCase('inference engine (no gradients)');
      const shape = [op.B, op.H, op.N, op.D];
      return build(
        [
          { op: 'Transpose', inputs: ['k'], outputs: ['kt'], attrs: { perm: [0, 1, 3, 2] } },
          { op: 'MatMul', inputs: ['q', 'kt'], outputs: ['s0'] },
          { op: 'Mul', inputs: ['s0', 'scale'], outputs: ['s'] },
          { op: 'Softmax', inputs: ['s'], outputs: ['p'], attrs: { axis: -1 } },
          { op: 'MatMul', inputs: ['p', 'v'], outputs: ['out'] },
        ],
        shape,
      );
    }
    default:
      throw new UnsupportedCase(`inference engine (no ${op.kind})`);
  }
}

export async function ortEngine(): Promise<Engine> {
  copySharedWrites();
  const ort: Dyn = await importPeer('onnxruntime-web/dist/ort.webgpu.bundle.min.mjs');
  ort.env.wasm.numThreads = 1;
  ort.env.logLevel = 'error';
  return {
    name: 'ort',
    supports: (c) => ['matmul', 'layerNorm', 'rmsNorm', 'softmax', 'attention', 'adamw', 'block-train'].includes(c.op.kind),
    async prepare(c: BenchCase, inputs: Input[]): Promise<Prepared> {
      // The composed graphs' scalar constants are graph inputs of shape [1] (they broadcast).
      const scalars: Input[] =
        c.op.kind === 'rmsNorm'
          ? [{ name: 'eps', shape: [1], data: Float32Array.of(1e-6) }]
          : c.op.kind === 'attention'
            ? [{ name: 'scale', shape: [1], data: Float32Array.of(1 / Math.sqrt(c.op.D)) }]
            : [];
      const all = [...inputs, ...scalars];
      const { model, output } = graphFor(c, all);
      const feeds: Record<string, Dyn> = Object.fromEntries(all.map((i) => [i.name, new ort.Tensor('float32', i.data, i.shape)]));
      const session = await ort.InferenceSession.create(model, { executionProviders: ['webgpu'], preferredOutputLocation: 'gpu-buffer' });
      const device: GPUDevice = await ort.env.webgpu.device;
      let outs: Dyn[] = [];
      let last: Dyn = null;
      return {
        run: async () => {
          const r = await session.run(feeds);
          outs.push(r[output[0]]);
          last = r[output[0]];
        },
        sync: async () => {
          await device.queue.onSubmittedWorkDone();
          for (const o of outs) if (o !== last) o.dispose();
          outs = [last];
        },
        read: async () => new Float32Array(await last.getData()),
        dispose: () => {
          for (const o of outs) o?.dispose();
          session.release();
        },
      };
    },
  };
}
