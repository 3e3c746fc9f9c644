/**
 * Where a replayed step's host time goes: the DiT^DH step of the suite, compiled without and with
 * fusion, each replay made as the suite's host probe makes it (GPU idle, then a pause), split into
 * the JS before the command encoder (replay hooks, dynamic uniforms and their writeBuffer), the
 * encoding of the pass (setPipeline / setBindGroup / dispatchWorkgroups), finish, submit and what
 * follows (the in-flight marker, the output tensors). Also Dawn's fixed costs on their own: an
 * 8 KiB writeBuffer, an empty submit, an onSubmittedWorkDone.
 *
 * The split is taken by wrapping the device's and the encoders' methods from outside (nothing in
 * src/ is instrumented); the wrappers add a few performance.now() calls per replay, not per dispatch.
 *
 * Run: npm run bench -- replay-host
 */
import { runtime } from '../src/gpu/runtime.js';
import { compileStep } from '../src/tensor/compile.js';
import { makeDitdhStep } from './ditdh-step.js';

const PROBES = 25;
const PAUSE_MS = 10;

interface Phases {
  total: number;
  beforeEncoder: number;
  writeBuffer: number;
  encode: number;
  finish: number;
  submit: number;
  after: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

export async function benchReplayHost(): Promise<string> {
  const rt = runtime();
  const device = (rt as unknown as { device: GPUDevice }).device;
  const queue = device.queue;
  const { body, x, y, dispose } = makeDitdhStep();
  const steps = [
    { name: 'compiled', step: compileStep(body, { name: 'DiT^DH step' }) },
    { name: 'compiled+fused', step: compileStep(body, { name: 'DiT^DH step, fused', fusion: true }) },
  ];
  for (let i = 0; i < 3; i++) for (const s of steps) s.step(x, y).dispose();
  await rt.sync();

  // Timestamps of the Dawn calls a replay makes, by wrapping them for the probes only.
  let t: { encoder?: number; finish0?: number; finish1?: number; submit1?: number; wb: number } = { wb: 0 };
  const orig = {
    createCommandEncoder: device.createCommandEncoder,
    writeBuffer: queue.writeBuffer,
    submit: queue.submit,
  };
  device.createCommandEncoder = function (this: GPUDevice, d?: GPUCommandEncoderDescriptor) {
    t.encoder = performance.now();
    const enc = orig.createCommandEncoder.call(this, d);
    const finish = enc.finish;
    enc.finish = function (this: GPUCommandEncoder, fd?: GPUCommandBufferDescriptor) {
      t.finish0 = performance.now();
      const cb = finish.call(this, fd);
      t.finish1 = performance.now();
      return cb;
    };
    return enc;
  };
  queue.writeBuffer = function (this: GPUQueue, ...args: Parameters<GPUQueue['writeBuffer']>) {
    const t0 = performance.now();
    orig.writeBuffer.apply(this, args);
    t.wb += performance.now() - t0;
  } as GPUQueue['writeBuffer'];
  queue.submit = function (this: GPUQueue, cbs: Iterable<GPUCommandBuffer>) {
    orig.submit.call(this, cbs);
    t.submit1 = performance.now();
  };

  const phases = new Map<string, Phases[]>(steps.map((s) => [s.name, []]));
  try {
    for (let i = 0; i < PROBES; i++) {
      for (const s of i % 2 ? steps : [...steps].reverse()) {
        await rt.sync();
        await new Promise((r) => setTimeout(r, PAUSE_MS));
        t = { wb: 0 };
        const t0 = performance.now();
        s.step(x, y).dispose();
        const t1 = performance.now();
        if (t.encoder === undefined || t.finish0 === undefined || t.finish1 === undefined || t.submit1 === undefined)
          throw new Error('replay-host: a replay did not go through createCommandEncoder / finish / submit');
        phases.get(s.name)!.push({
          total: t1 - t0,
          beforeEncoder: t.encoder - t0,
          writeBuffer: t.wb,
          encode: t.finish0 - t.encoder,
          finish: t.finish1 - t.finish0,
          submit: t.submit1 - t.finish1,
          after: t1 - t.submit1,
        });
      }
    }
    await rt.sync();
  } finally {
    Object.assign(device, { createCommandEncoder: orig.createCommandEncoder });
    Object.assign(queue, { writeBuffer: orig.writeBuffer, submit: orig.submit });
  }

  const lines = [
    `DiT^DH step replays, GPU idle and a ${PAUSE_MS} ms pause before each (the suite's host probe), ${PROBES} each, interleaved; medians:`,
    '| step | dispatches | µs/dispatch | replay µs | before encoder (writeBuffer) | encode µs/dispatch | finish | submit µs/dispatch | after submit |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const s of steps) {
    const n = s.step.stats()!.dispatches;
    const m = (k: keyof Phases) => 1000 * median(phases.get(s.name)!.map((p) => p[k]));
    lines.push(
      `| ${s.name} | ${n} | ${(m('total') / n).toFixed(1)} | ${m('total').toFixed(0)} | ${m('beforeEncoder').toFixed(0)} (${m('writeBuffer').toFixed(0)}) | ${(m('encode') / n).toFixed(2)} | ${m('finish').toFixed(0)} | ${(m('submit') / n).toFixed(2)} | ${m('after').toFixed(0)} |`,
    );
  }

  // Dawn's fixed costs per call, made the same way (GPU idle, pause before each).
  const dynamicBytes = 8192;
  const buf = device.createBuffer({ size: dynamicBytes, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  const data = new Uint8Array(dynamicBytes);
  const fixed = { writeBuffer: [] as number[], emptySubmit: [] as number[], onSubmittedWorkDone: [] as number[] };
  for (let i = 0; i < PROBES; i++) {
    await rt.sync();
    await new Promise((r) => setTimeout(r, PAUSE_MS));
    let t0 = performance.now();
    queue.writeBuffer(buf, 0, data);
    fixed.writeBuffer.push(performance.now() - t0);
    t0 = performance.now();
    queue.submit([device.createCommandEncoder().finish()]);
    fixed.emptySubmit.push(performance.now() - t0);
    t0 = performance.now();
    const done = queue.onSubmittedWorkDone();
    fixed.onSubmittedWorkDone.push(performance.now() - t0);
    await done;
  }
  buf.destroy();
  lines.push(
    '',
    `Dawn calls on their own (GPU idle, ${PAUSE_MS} ms pause, medians): writeBuffer of ${dynamicBytes} B ${(1000 * median(fixed.writeBuffer)).toFixed(0)} µs; ` +
      `createCommandEncoder + finish + submit of an empty encoder ${(1000 * median(fixed.emptySubmit)).toFixed(0)} µs; ` +
      `onSubmittedWorkDone ${(1000 * median(fixed.onSubmittedWorkDone)).toFixed(0)} µs.`,
  );
  for (const s of steps) s.step.dispose();
  dispose();
  return lines.join('\n');
}
