/** Quality metrics (FID, KID, precision/recall), feature statistics and the Inception weights. */
export { checkFinite, featureSet, type FeatureSet, MetricInputError } from './features.js';
export { featureStats, type GaussianStats, StreamingStats } from './feature-stats.js';
export { type FidResult, frechetDistance, traceSqrtProduct } from './fid.js';
export { kernelInceptionDistance, kidSubsetIndices, type KidOptions, type KidResult } from './kid.js';
export { type PrecisionRecall, precisionRecall } from './precision-recall.js';
export { canonicalKey, loadReferenceStats, saveReferenceStats, StatsCacheError, statsCachePath, type StatsKey } from './stats-cache.js';
export {
  InceptionWeightsError,
  type KerasLayer,
  loadNsfwjsInception,
  locateNsfwjs,
  type NamedTensor,
  NSFWJS_VERSION,
  type NsfwjsInception,
} from './inception-weights.js';
export {
  FID_INCEPTION_OPTIONAL,
  FID_INCEPTION_REQUIRED,
  FidInceptionLayoutError,
  loadFidInceptionSafetensors,
} from './fid-inception-layout.js';
export { symmetricEigen, type SymmetricEigen } from './symmetric-eigen.js';
