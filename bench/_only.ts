import { init, shutdown } from '../src/gpu/runtime.js';
import { benchCompiledTrainStep } from './compile.js';
await init();
console.log(await benchCompiledTrainStep({ rounds: Number(process.argv[2] ?? 3) }));
shutdown();
