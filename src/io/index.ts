/** Checkpoints, images and data sets. */
export * from './safetensors.js';
export { decodeImage, readImage, writePng, imageGrid, type Image } from './images.js';
export { loadImageFolder, type ImageSet, type LoadOptions } from './datasets.js';
export { DataError } from './formats/errors.js';
