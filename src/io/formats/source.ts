/** What every file format hands the data pipeline: labelled records it can load on demand. */
import type { RawImage } from './image-ops.js';

export interface RecordSource {
  /** A short name for reports: 'cifar10', 'fashion-mnist', or the folder/archive name. */
  readonly name: string;
  /** The path the user gave. */
  readonly source: string;
  readonly classes: string[];
  /** Class index of every record of the chosen split. */
  readonly labels: Int32Array;
  /** The file (or file + record) behind record i, for error messages. */
  describe(i: number): string;
  /** Undecoded bytes or raw pixels of the given records (small reads: call per batch). */
  load(indices: ArrayLike<number>): Promise<RawImage[]>;
  close(): Promise<void>;
}

/** Image file names sharp decodes. */
export const IMAGE_FILE = /\.(jpe?g|png|webp|gif|tiff?|avif)$/i;
