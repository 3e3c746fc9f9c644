/**
 * Safetensors reader and writer (https://github.com/huggingface/safetensors, format section),
 * by responsibility: header parsing (safetensors-header.ts, no Node imports), reading
 * (safetensors-read.ts), writing (safetensors-write.ts) and sharded checkpoints / Hugging Face
 * snapshot directories (safetensors-index.ts). This module is their public face.
 */
export type { SafetensorsDType, EngineTensorData, WritableArray } from './dtypes.js';
export { f16BitsToF32, f32ToF16Bits, bf16BitsToF32, f32ToBf16Bits } from './dtypes.js';
export {
  MAX_HEADER_BYTES,
  SafetensorsError,
  type LoadedTensor,
  type SafetensorsFile,
  type TensorInfo,
  type TensorSource,
} from './safetensors-header.js';
export { loadSafetensors, openSafetensors, parseSafetensors } from './safetensors-read.js';
export { saveSafetensors, serializeSafetensors, type WriteTensor } from './safetensors-write.js';
export { openCheckpoint, openShardedSafetensors, type ShardedSafetensors } from './safetensors-index.js';
