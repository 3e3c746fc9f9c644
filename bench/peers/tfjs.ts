/** TensorFlow.js 4.22 with its WebGPU backend, on the suite's cases, in tfjs's own API. */
import { ADAM } from '../suite/reference.js';
import { type Engine, type Prepared, UnsupportedCase } from '../suite/engine.js';
import type { BenchCase, Input } from '../suite/spec.js';
import { type Dyn, GELU_C, importPeer } from './dyn.js';

export async function tfjsEngine(): Promise<Engine> {
  const tf: Dyn = await importPeer('@tensorflow/tfjs-core/dist/index.js');
  // The chained methods (x.sub(y)) are registered by a side-effect module of tfjs-core.
  await importPeer('@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops.js');
  // So are the gradients (tf.grads, optimizers) of its ops.
  await importPeer('@tensorflow/tfjs-core/dist/register_all_gradients.js');
  await importPeer('@tensorflow/tfjs-backend-webgpu/dist/index.js');
  if (!(await tf.setBackend('webgpu'))) throw new Error('tfjs: the webgpu backend did not initialise');
  await tf.ready();
  const backend: Dyn = tf.backend();
  // tfjs records into its own command encoder and submits lazily: end its pass and submit as its
  // own read-back does (getBufferData), then wait for the queue.
  const sync = async () => {
    backend.ensureCommandEncoderReady();
    backend.endComputePassEncoder();
    backend.submitQueue();
    await backend.device.queue.onSubmittedWorkDone();
  };
  const layerNorm = (x: Dyn, w: Dyn, b: Dyn) => {
    const { mean, variance } = tf.moments(x, -1, true);
    return x
      .sub(mean)
      .mul(tf.rsqrt(variance.add(1e-5)))
      .mul(w)
      .add(b);
  };
  const gelu = (x: Dyn) => x.mul(0.5).mul(tf.tanh(x.add(x.pow(3).mul(0.044715)).mul(GELU_C)).add(1));
  const attention = (q: Dyn, k: Dyn, v: Dyn, scale: number) => tf.matMul(tf.softmax(tf.matMul(q, k, false, true).mul(scale)), v);

  return {
    name: 'tfjs',
    supports: (c) => ['matmul', 'layerNorm', 'rmsNorm', 'softmax', 'attention', 'adamw', 'block-train'].includes(c.op.kind),
    async prepare(c: BenchCase, inputs: Input[]): Promise<Prepared> {
      const ts: Dyn[] = inputs.map((i) => tf.tensor(i.data, i.shape));
      let outs: Dyn[] = [];
      let readable: Dyn = null;
      const base = {
        sync: async () => {
          await sync();
          for (const o of outs) if (o !== readable) o.dispose();
          outs = [];
        },
        read: async () => new Float32Array(await readable.data()),
        dispose: () => {
          for (const t of [...ts, ...outs, readable]) t?.dispose();
        },
      };
      const keepLast = (o: Dyn) => {
        if (readable) outs.push(readable);
        readable = o;
      };
      const op = c.op;
      switch (op.kind) {
        case 'matmul':
          return { ...base, run: () => keepLast(tf.matMul(ts[0], ts[1], op.transA ?? false, op.transB ?? false)) };
        case 'layerNorm':
          return { ...base, run: () => keepLast(tf.tidy(() => layerNorm(ts[0], ts[1], ts[2]))) };
        case 'rmsNorm':
          return {
            ...base,
            run: () => keepLast(tf.tidy(() => ts[0].mul(tf.rsqrt(ts[0].square().mean(-1, true).add(1e-6))).mul(ts[1]))),
          };
        case 'softmax':
          return { ...base, run: () => keepLast(tf.softmax(ts[0], -1)) };
        case 'attention': {
          const scale = 1 / Math.sqrt(op.D);
          if (!op.backward) return { ...base, run: () => keepLast(tf.tidy(() => attention(ts[0], ts[1], ts[2], scale))) };
          const f = tf.grads((q: Dyn, k: Dyn, v: Dyn) => attention(q, k, v, scale));
          return { ...base, run: () => keepLast(tf.tidy(() => f(ts.slice(0, 3), ts[3])[2])) };
        }
        case 'adamw': {
          const p = tf.variable(ts[0], true, `p${Date.now()}`);
          const opt = tf.train.adam(ADAM.lr, ADAM.betas[0], ADAM.betas[1], ADAM.eps);
          return {
            ...base,
            run: () => opt.applyGradients({ [p.name]: ts[1] }),
            read: async () => new Float32Array(await p.data()),
            dispose: () => {
              opt.dispose();
              p.dispose();
              base.dispose();
            },
          };
        }
        case 'block-train': {
          const { B, N, D, H } = op;
          const x = ts[0].reshape([B * N, D]);
          const P = ts.slice(1).map((t, i) => tf.variable(t, true, `blk${Date.now()}_${i}`));
          const [ln1w, ln1b, qkvw, qkvb, projw, projb, ln2w, ln2b, fc1w, fc1b, fc2w, fc2b] = P;
          const lin = (a: Dyn, w: Dyn, b: Dyn) => tf.matMul(a, w, false, true).add(b);
          const heads = (t: Dyn) => t.reshape([B, N, H, D / H]).transpose([0, 2, 1, 3]);
          const lossFn = () => {
            const [q, k, v] = tf.split(lin(layerNorm(x, ln1w, ln1b), qkvw, qkvb), 3, 1);
            const a = attention(heads(q), heads(k), heads(v), 1 / Math.sqrt(D / H))
              .transpose([0, 2, 1, 3])
              .reshape([B * N, D]);
            const h = x.add(lin(a, projw, projb));
            const y = h.add(lin(gelu(lin(layerNorm(h, ln2w, ln2b), fc1w, fc1b)), fc2w, fc2b));
            return y.square().mean();
          };
          const opt = tf.train.adam(1e-4, ADAM.betas[0], ADAM.betas[1], ADAM.eps);
          let first: Dyn = null;
          return {
            ...base,
            run: () => {
              const cost = opt.minimize(lossFn, true);
              if (!first) first = cost;
              else outs.push(cost);
            },
            read: async () => new Float32Array(await first.data()),
            dispose: () => {
              opt.dispose();
              first?.dispose();
              x.dispose();
              for (const v of P) v.dispose();
              base.dispose();
            },
          };
        }
        default:
          throw new UnsupportedCase(`no ${op.kind} case for tfjs`);
      }
    },
  };
}
