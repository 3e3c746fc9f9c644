/**
 * A minimal streaming reader of (gzipped) tar archives: regular files only, names from ustar
 * (prefix + name), GNU long names and pax `path` records. Written for data sets of many small
 * files, where node-tar's per-entry stream machinery cost ~5× the gunzip itself (3.4 s against
 * 0.65 s on CIFAR-10's 60,000 JPEGs). Header checksums are verified; a cut archive is an error.
 */
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import { createGunzip } from 'node:zlib';

const BLOCK = 512;

function isGzip(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const head = Buffer.alloc(2);
    return readSync(fd, head, 0, 2, 0) === 2 && head[0] === 0x1f && head[1] === 0x8b;
  } finally {
    closeSync(fd);
  }
}

const text = (b: Uint8Array) => {
  const end = b.indexOf(0);
  return Buffer.from(end < 0 ? b : b.subarray(0, end)).toString('utf8');
};

function octal(b: Uint8Array): number {
  if (b[0] & 0x80) {
    // GNU base-256 for sizes ≥ 8 GiB.
    let v = b[0] & 0x7f;
    for (let i = 1; i < b.length; i++) v = v * 256 + b[i];
    return v;
  }
  const s = text(b).trim();
  return s === '' ? 0 : Number.parseInt(s, 8);
}

function checksumOk(h: Uint8Array): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
  return sum === octal(h.subarray(148, 156));
}

/** The `path` record of a pax extended header, if any ("<len> path=<value>\n" records). */
function paxPath(data: Buffer): string | null {
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    if (space < 0) break;
    const len = Number.parseInt(data.subarray(at, space).toString('ascii'), 10);
    if (!(len > 0)) break;
    const record = data.subarray(space + 1, at + len - 1).toString('utf8');
    if (record.startsWith('path=')) return record.slice(5);
    at += len;
  }
  return null;
}

/**
 * Calls `onFile(name, bytes)` for each regular file whose name `want` accepts, in archive order.
 * Throws an Error (the caller names the archive) on a bad header or a truncated archive.
 */
export async function scanTar(file: string, want: (name: string) => boolean, onFile: (name: string, bytes: Buffer) => void): Promise<void> {
  const input = createReadStream(file, { highWaterMark: 1 << 20 });
  const stream = isGzip(file) ? input.pipe(createGunzip({ chunkSize: 1 << 18 })) : input;
  input.on('error', (e) => stream.destroy(e));
  let pending: Buffer = Buffer.alloc(0);
  // Current entry's data: how much is left, and where it goes.
  const entry: { remaining: number; padding: number; collect: Buffer[] | null; finish: ((data: Buffer) => void) | null } = {
    remaining: 0,
    padding: 0,
    collect: null,
    finish: null,
  };
  let longName: string | null = null;
  let ended = false;

  const header = (h: Buffer) => {
    if (h.every((v) => v === 0)) {
      ended = true;
      return;
    }
    if (!checksumOk(h)) throw new Error('corrupt tar header (checksum mismatch)');
    const size = octal(h.subarray(124, 136));
    const type = h[156];
    const magic = h.subarray(257, 262).toString('ascii');
    let name = text(h.subarray(0, 100));
    if (magic === 'ustar') {
      const prefix = text(h.subarray(345, 500));
      if (prefix) name = `${prefix}/${name}`;
    }
    if (longName !== null) {
      name = longName;
      longName = null;
    }
    entry.remaining = size;
    entry.padding = (BLOCK - (size % BLOCK)) % BLOCK;
    entry.collect = null;
    entry.finish = null;
    if (type === 0x4c /* L: GNU long name of the next entry */) {
      entry.collect = [];
      entry.finish = (d) => (longName = text(d));
    } else if (type === 0x78 /* x: pax header of the next entry */) {
      entry.collect = [];
      entry.finish = (d) => (longName = paxPath(d) ?? longName);
    } else if ((type === 0x30 || type === 0 || type === 0x37) && want(name)) {
      entry.collect = [];
      entry.finish = (d) => onFile(name, d);
    }
  };

  for await (const chunk of stream as AsyncIterable<Buffer>) {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    let at = 0;
    while (!ended) {
      if (entry.remaining > 0) {
        const n = Math.min(entry.remaining, pending.length - at);
        if (n === 0) break;
        // Copies: a view would pin the whole decompressed chunk behind each small file.
        if (entry.collect) entry.collect.push(Buffer.from(pending.subarray(at, at + n)));
        at += n;
        entry.remaining -= n;
        if (entry.remaining > 0) break;
      }
      if (entry.finish) {
        const parts = entry.collect ?? [];
        entry.finish(parts.length === 1 ? parts[0] : Buffer.concat(parts));
        entry.finish = null;
        entry.collect = null;
      }
      if (entry.padding > 0) {
        const n = Math.min(entry.padding, pending.length - at);
        at += n;
        entry.padding -= n;
        if (entry.padding > 0) break;
      }
      if (pending.length - at < BLOCK) break;
      header(pending.subarray(at, at + BLOCK));
      at += BLOCK;
    }
    pending = pending.subarray(at);
    if (ended) {
      stream.destroy();
      input.destroy();
      return;
    }
  }
  if (entry.remaining > 0 || entry.finish) throw new Error('truncated archive (cut inside a file)');
  throw new Error('truncated archive (no end-of-archive marker)');
}
