/** scanTar against archives written by node-tar: long names (ustar prefix, pax), plain and gzipped, damage. */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tar from 'tar';
import { afterAll, describe, expect, it } from 'vitest';
import { scanTar } from '../../src/io/formats/tar.js';
import { removeTempDirs, tempDir } from './fixtures.js';

afterAll(() => removeTempDirs());

/** Files of assorted sizes (0, < 1 block, exact blocks, several blocks) under short and long names. */
function tree(root: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const add = (rel: string, size: number) => {
    const data = Buffer.from(Array.from({ length: size }, (_, i) => (i * 7 + rel.length) & 255));
    mkdirSync(path.join(root, path.dirname(rel)), { recursive: true });
    writeFileSync(path.join(root, rel), data);
    files.set(rel, data);
  };
  add('train/a/empty.bin', 0);
  add('train/a/small.bin', 100);
  add('train/a/block.bin', 512);
  add('train/b/big.bin', 5000);
  add(`train/${'c'.repeat(90)}/${'d'.repeat(60)}.bin`, 700); // > 100 chars: ustar prefix
  add(`train/e/${'f'.repeat(150)}.bin`, 300); // a 150-char file name: pax path
  return files;
}

async function scanAll(file: string): Promise<Map<string, Buffer>> {
  const got = new Map<string, Buffer>();
  await scanTar(
    file,
    () => true,
    (name, data) => got.set(name.replace(/^\.\//, ''), data),
  );
  return got;
}

describe('scanTar', () => {
  it.each([true, false])('gzip=%s: every regular file with its exact bytes, long names included', async (gzip) => {
    const root = tempDir('tar-src');
    const files = tree(root);
    const file = path.join(tempDir('tar-out'), gzip ? 'x.tar.gz' : 'x.tar');
    await tar.c({ gzip, file, cwd: root }, ['train']);
    const got = await scanAll(file);
    expect([...got.keys()].sort()).toEqual([...files.keys()].sort());
    for (const [name, data] of files) expect(got.get(name)).toEqual(data);
  });

  it('passes over files `want` refuses without returning them', async () => {
    const root = tempDir('tar-want');
    tree(root);
    const file = path.join(tempDir('tar-want-out'), 'x.tar.gz');
    await tar.c({ gzip: true, file, cwd: root }, ['train']);
    const names: string[] = [];
    await scanTar(
      file,
      (n) => n.includes('/b/'),
      (n) => names.push(n),
    );
    expect(names).toEqual(['train/b/big.bin']);
  });

  it('a corrupt header or a cut plain tar is an error', async () => {
    const root = tempDir('tar-bad');
    tree(root);
    const file = path.join(tempDir('tar-bad-out'), 'x.tar');
    await tar.c({ file, cwd: root }, ['train']);
    const whole = readFileSync(file);
    const corrupt = Buffer.from(whole);
    corrupt[0] ^= 0x01; // the first header's name: checksum no longer matches
    writeFileSync(file, corrupt);
    await expect(scanAll(file)).rejects.toThrow(/checksum/);
    writeFileSync(file, whole.subarray(0, 512 * 5 + 100));
    await expect(scanAll(file)).rejects.toThrow(/truncated/);
  });
});
