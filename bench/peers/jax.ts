/**
 * jax-js 0.1.25 on WebGPU, eager ('jax') and jit-compiled ('jax-jit'), in its own API: arrays are
 * owned (every call consumes its arguments, `.ref` keeps one), lazy (blockUntilReady before
 * disposing), training through valueAndGrad.
 */
import { ADAM } from '../suite/reference.js';
import type { Engine, Prepared } from '../suite/engine.js';
import type { BenchCase, Input } from '../suite/spec.js';
import { type Dyn, GELU_C, importPeer } from './dyn.js';

export async function jaxEngines(): Promise<Engine[]> {
  const jax: Dyn = await importPeer('@jax-js/jax/dist/index.js');
  const devices: string[] = await jax.init();
  if (!devices.includes('webgpu')) throw new Error(`jax-js: no webgpu device (have ${devices.join(', ')})`);
  jax.defaultDevice('webgpu');
  const np: Dyn = jax.numpy;
  const nn: Dyn = jax.nn;
  return [engine(jax, np, nn, false), engine(jax, np, nn, true)];
}

function engine(jax: Dyn, np: Dyn, nn: Dyn, jit: boolean): Engine {
  const wrap = (f: Dyn) => (jit ? jax.jit(f) : f);
  const layerNorm = (x: Dyn, w: Dyn, b: Dyn) => nn.standardize(x, -1, { epsilon: 1e-5 }).mul(w).add(b);
  const rmsNorm = (x: Dyn, w: Dyn) => x.ref.div(np.sqrt(np.square(x).mean(-1, { keepdims: true }).add(1e-6))).mul(w);
  const gelu = (x: Dyn) => x.ref.mul(0.5).mul(np.tanh(x.ref.add(np.power(x, 3).mul(0.044715)).mul(GELU_C)).add(1));
  return {
    name: jit ? 'jax-jit' : 'jax',
    supports: (c) => ['matmul', 'layerNorm', 'rmsNorm', 'softmax', 'attention', 'adamw', 'block-train'].includes(c.op.kind),
    async prepare(c: BenchCase, inputs: Input[]): Promise<Prepared> {
      const op = c.op;
      const arr = (i: Input) => np.array(i.data).reshape(i.shape);
      // Attention in jax's layout [B, N, H, D] (transposed once here, outside the timing).
      const toBNHD = (i: Input) => arr(i).transpose([0, 2, 1, 3]);
      const held: Dyn[] = op.kind === 'attention' ? inputs.map(toBNHD) : inputs.map(arr);
      await jax.blockUntilReady(held.map((h) => h.ref));
      let pending: Dyn[] = [];
      let last: Dyn = null;
      // State a training case carries from call to call: waited for too (laziness would skip it).
      let state: () => Dyn[] = () => [];
      const sync = async () => {
        for (const p of [...pending, ...state()]) await p.blockUntilReady();
        for (const p of pending) if (p !== last) p.dispose();
        pending = last ? [last] : [];
      };
      const push = (o: Dyn) => {
        pending.push(o);
        last = o;
      };
      const base = {
        sync,
        read: async () => new Float32Array(await last.ref.data()),
        dispose: () => {
          for (const h of [...held, ...pending]) if (h.refCount > 0) h.dispose();
        },
      };
      const refs = () => held.map((h) => h.ref);
      switch (op.kind) {
        case 'matmul': {
          const f = wrap((a: Dyn, b: Dyn) => np.matmul(op.transA ? a.transpose() : a, op.transB ? b.transpose() : b));
          return { ...base, run: () => push(f(...refs())) };
        }
        case 'layerNorm':
          return { ...base, run: () => push(wrap(layerNorm)(...refs())) };
        case 'rmsNorm':
          return { ...base, run: () => push(wrap(rmsNorm)(...refs())) };
        case 'softmax':
          return { ...base, run: () => push(wrap((x: Dyn) => nn.softmax(x, -1))(...refs())) };
        case 'attention': {
          const attn = (q: Dyn, k: Dyn, v: Dyn) => nn.dotProductAttention(q, k, v);
          const read = async () => {
            const t = last.ref.transpose([0, 2, 1, 3]);
            return new Float32Array(await t.data());
          };
          if (!op.backward) {
            const f = wrap(attn);
            return { ...base, read, run: () => push(f(...refs().slice(0, 3))) };
          }
          // d/d(q,k,v) of <attention(q, k, v), g>: the vjp with upstream gradient g. All three are
          // kept and waited for (jax-js is lazy: a gradient nobody reads would never be computed).
          const f = wrap((q: Dyn, k: Dyn, v: Dyn, g: Dyn) =>
            jax.grad((qkv: Dyn[]) => attn(qkv[0], qkv[1], qkv[2]).mul(g).sum())([q, k, v]),
          );
          return {
            ...base,
            read,
            run: () => {
              const [dq, dk, dv] = f(...refs());
              push(dq);
              push(dk);
              push(dv);
            },
          };
        }
        case 'adamw': {
          const { lr, betas, eps } = ADAM;
          const [b1, b2] = betas;
          let t = 0;
          let p = held[0].ref;
          let m = np.zerosLike(held[0].ref);
          let v = np.zerosLike(held[0].ref);
          const step = wrap((p: Dyn, g: Dyn, m: Dyn, v: Dyn, c1: Dyn, c2: Dyn) => {
            const m2 = m.mul(b1).add(g.ref.mul(1 - b1));
            const v2 = v.mul(b2).add(np.square(g).mul(1 - b2));
            const upd = m2.ref
              .div(c1)
              .div(np.sqrt(v2.ref.div(c2)).add(eps))
              .mul(lr);
            return [p.sub(upd), m2, v2];
          });
          state = () => [p, m, v];
          return {
            ...base,
            run: () => {
              t++;
              [p, m, v] = step(p, held[1].ref, m, v, np.array(1 - b1 ** t), np.array(1 - b2 ** t));
              push(p.ref);
            },
            dispose: () => {
              base.dispose();
              for (const a of [p, m, v]) if (a.refCount > 0) a.dispose();
            },
          };
        }
        case 'block-train': {
          const { B, N, D, H } = op;
          const x = held[0].reshape([B * N, D]);
          let params: Dyn[] = held.slice(1);
          const lin = (a: Dyn, w: Dyn, b: Dyn) => np.matmul(a, w.transpose()).add(b);
          const heads = (t: Dyn) => t.reshape([B, N, H, D / H]);
          const loss = (P: Dyn[], x: Dyn) => {
            const [ln1w, ln1b, qkvw, qkvb, projw, projb, ln2w, ln2b, fc1w, fc1b, fc2w, fc2b] = P;
            const [q, k, v] = np.split(lin(layerNorm(x.ref, ln1w, ln1b), qkvw, qkvb), 3, 1);
            const a = nn.dotProductAttention(heads(q), heads(k), heads(v)).reshape([B * N, D]);
            const h = x.add(lin(a, projw, projb));
            const y = h.ref.add(lin(gelu(lin(layerNorm(h, ln2w, ln2b), fc1w, fc1b)), fc2w, fc2b));
            return np.square(y).mean();
          };
          const { lr, betas, eps } = { ...ADAM, lr: 1e-4 };
          const [b1, b2] = betas;
          let t = 0;
          let ms = params.map((p) => np.zerosLike(p.ref));
          let vs = params.map((p) => np.zerosLike(p.ref));
          const step = wrap((P: Dyn[], M: Dyn[], V: Dyn[], x: Dyn, c1: Dyn, c2: Dyn) => {
            const [l, G] = jax.valueAndGrad(loss)(
              P.map((p) => p.ref),
              x,
            );
            const out = P.map((p, i) => {
              const g = G[i];
              const m2 = M[i].mul(b1).add(g.ref.mul(1 - b1));
              const v2 = V[i].mul(b2).add(np.square(g).mul(1 - b2));
              const upd = m2.ref
                .div(c1.ref)
                .div(np.sqrt(v2.ref.div(c2.ref)).add(eps))
                .mul(lr);
              return [p.sub(upd), m2, v2];
            });
            c1.dispose();
            c2.dispose();
            return [l, out.map((o) => o[0]), out.map((o) => o[1]), out.map((o) => o[2])];
          });
          let first: Dyn = null;
          state = () => [...params, ...ms, ...vs, ...(first ? [first] : [])];
          return {
            ...base,
            run: () => {
              t++;
              const [l, P2, M2, V2] = step(params, ms, vs, x.ref, np.array(1 - b1 ** t), np.array(1 - b2 ** t));
              [params, ms, vs] = [P2, M2, V2];
              if (!first) first = l;
              else push(l);
            },
            read: async () => new Float32Array(await first.ref.data()),
            dispose: () => {
              base.dispose();
              for (const a of [x, first, ...params, ...ms, ...vs]) if (a && a.refCount > 0) a.dispose();
            },
          };
        }
        default:
          throw new Error(`no ${op.kind} case for jax-js`);
      }
    },
  };
}
