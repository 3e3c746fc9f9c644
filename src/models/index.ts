/** The RAE models. */
export { Dinov2, Dinov2WithRegisters, IMAGENET_MEAN, IMAGENET_STD, type Dinov2Config } from './dinov2.js';
export { RAEDecoder, type RAEDecoderConfig } from './rae-decoder.js';
export { DiT, DiTDH, type DiTConfig } from './dit.js';
