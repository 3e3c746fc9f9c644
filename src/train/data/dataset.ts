/**
 * Data sets over a RecordSource: decoded crops either held in memory (uint8, [3, S, S] each) when
 * they fit the byte budget, or decoded per read (streaming) from the source's files/offsets.
 * Train and held-out sets are two index lists over one shared store.
 */
import { DataError } from '../../io/formats/errors.js';
import type { RecordSource } from '../../io/formats/source.js';
import { type DecodePool, DecodePoolError, type DecodeResult, decodeOnMainThread } from './pool.js';
import type { RawImage } from '../../io/formats/image-ops.js';

export interface Skipped {
  file: string;
  reason: string;
}

export interface ImageDataset {
  readonly name: string;
  readonly size: number;
  readonly imageSize: number;
  readonly classes: string[];
  readonly labels: Int32Array;
  readonly skipped: Skipped[];
  /** uint8 RGB, layout [n, 3, S, S] (CHW), already cropped/resized; grey → 3 channels. */
  read(indices: ArrayLike<number>): Promise<Uint8Array>;
}

/** Decoding of source records through the pool (or the main thread), with bad-file policy. */
export class RecordDecoder {
  /** Bad records met so far (each once), across the data sets sharing this decoder. */
  readonly skipped: (Skipped & { record: number })[] = [];
  private skippedRecords = new Set<number>();
  constructor(
    readonly source: RecordSource,
    readonly size: number,
    private pool: DecodePool | null,
    readonly skipBad: boolean,
  ) {}

  private async decodeRaw(raw: RawImage[]): Promise<DecodeResult> {
    if (this.pool) {
      try {
        return await this.pool.decode(raw, this.size);
      } catch (e) {
        if (!(e instanceof DecodePoolError)) throw e;
        // Same code on the main thread gives the same bytes: slower, never wrong. (A bundler that
        // injects helpers into makeImageOps, e.g. esbuild's keepNames, breaks the workers.)
        process.emitWarning(`${e.message}; decoding on the main thread from now on`);
        this.pool = null;
      }
    }
    return decodeOnMainThread(raw, this.size);
  }

  /** Decodes records; failures throw a DataError naming the file, or (skipBad) are recorded and
   *  reported in `bad` (their slots stay zero). */
  async decode(records: ArrayLike<number>): Promise<{ out: Uint8Array; bad: Set<number> }> {
    let raw: RawImage[];
    try {
      raw = await this.source.load(records);
    } catch (e) {
      if (e instanceof DataError && !this.skipBad) throw e;
      // A read failure of one file in a batch: load them one by one to find which.
      raw = [];
      const badReads = new Map<number, string>();
      for (let i = 0; i < records.length; i++) {
        try {
          raw.push(...(await this.source.load([records[i]])));
        } catch (err) {
          if (!(err instanceof DataError)) throw err;
          badReads.set(i, err.message);
          raw.push({ kind: 'encoded', bytes: new Uint8Array(0) });
        }
      }
      if (!this.skipBad) throw new DataError([...badReads.values()][0]);
    }
    const { out, errors } = await this.decodeRaw(raw);
    const bad = new Set<number>();
    for (const { index, message: raw } of errors) {
      // libvips reports over several lines; the CLI prints one.
      const message = raw.trim().replace(/\s*\n\s*/g, '; ');
      const record = records[index];
      const file = this.source.describe(record);
      if (!this.skipBad) throw new DataError(`${file}: cannot decode image (${message}); pass skipBad to skip bad files`);
      bad.add(index);
      if (!this.skippedRecords.has(record)) {
        this.skippedRecords.add(record);
        this.skipped.push({ record, file, reason: message });
      }
    }
    return { out, bad };
  }
}

/** Crops held in memory: one uint8 block, a slot per record. */
export class MemoryStore {
  private slotOf = new Map<number, number>();
  private pixels: Uint8Array;
  constructor(
    readonly decoder: RecordDecoder,
    records: Int32Array,
  ) {
    this.pixels = new Uint8Array(records.length * this.per);
    records.forEach((r, i) => this.slotOf.set(r, i));
  }
  get per(): number {
    return 3 * this.decoder.size * this.decoder.size;
  }
  /** Decodes every record once (in chunks, so encoded bytes never pile up); returns bad records. */
  async fill(records: Int32Array, chunk = 2048): Promise<Set<number>> {
    const bad = new Set<number>();
    for (let s = 0; s < records.length; s += chunk) {
      const part = records.subarray(s, s + chunk);
      const r = await this.decoder.decode(part);
      for (let i = 0; i < part.length; i++) {
        if (r.bad.has(i)) bad.add(part[i]);
        else this.pixels.set(r.out.subarray(i * this.per, (i + 1) * this.per), this.slotOf.get(part[i])! * this.per);
      }
    }
    return bad;
  }
  gather(records: ArrayLike<number>): Uint8Array {
    const out = new Uint8Array(records.length * this.per);
    for (let i = 0; i < records.length; i++) {
      const slot = this.slotOf.get(records[i]);
      if (slot === undefined) throw new Error(`record ${records[i]} is not in memory`);
      out.set(this.pixels.subarray(slot * this.per, (slot + 1) * this.per), i * this.per);
    }
    return out;
  }
}

/** A list of source records seen as a data set. */
export class RecordDataset implements ImageDataset {
  readonly labels: Int32Array;
  readonly classes: string[];
  readonly name: string;
  readonly imageSize: number;
  /**
   * @param records the source records of this set (bad ones already dropped when in memory)
   * @param members every record assigned to this set, bad or not: train and held-out sets share
   *   one decoder, and each reports only its own skipped files (so their counts add up).
   */
  constructor(
    readonly records: Int32Array,
    private decoder: RecordDecoder,
    private memory: MemoryStore | null,
    private members: Int32Array = records,
  ) {
    const src = decoder.source;
    this.labels = Int32Array.from(records, (r) => src.labels[r]);
    this.classes = src.classes;
    this.name = src.name;
    this.imageSize = decoder.size;
  }
  get size(): number {
    return this.records.length;
  }
  get skipped(): Skipped[] {
    if (this.decoder.skipped.length === 0) return [];
    const mine = new Set(this.members);
    return this.decoder.skipped.filter((s) => mine.has(s.record)).map(({ file, reason }) => ({ file, reason }));
  }
  /** True when the crops are held in memory rather than decoded per read. */
  get inMemory(): boolean {
    return this.memory !== null;
  }

  async read(indices: ArrayLike<number>): Promise<Uint8Array> {
    const recs = Array.from(indices, (i) => {
      if (!Number.isInteger(i) || i < 0 || i >= this.records.length)
        throw new RangeError(`index ${i} out of range [0, ${this.records.length})`);
      return this.records[i];
    });
    if (this.memory) return this.memory.gather(recs);
    const per = 3 * this.imageSize * this.imageSize;
    const { out, bad } = await this.decoder.decode(recs);
    // Streaming with skipBad: a bad image found now is replaced by the next good one in data set
    // order, so the batch keeps its size and a replay gives the same bytes.
    for (const slot of bad) {
      let j = Array.from(indices)[slot];
      for (let tries = 1; tries <= this.records.length; tries++) {
        j = (j + 1) % this.records.length;
        const r = await this.decoder.decode([this.records[j]]);
        if (r.bad.size === 0) {
          out.set(r.out, slot * per);
          break;
        }
        if (tries === this.records.length) throw new DataError(`${this.decoder.source.source}: no decodable image left`);
      }
    }
    return out;
  }
}
