/**
 * The peers are loaded from bench/peers/node_modules at run time, so that the library typechecks
 * and builds without them; their APIs are used untyped here.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';

// biome-ignore lint/suspicious/noExplicitAny: peer modules are loaded untyped (see above)
export type Dyn = any;

export const PEERS_DIR = path.resolve('bench/peers');

/** Imports a peer module by its path under bench/peers/node_modules. */
export async function importPeer(rel: string): Promise<Dyn> {
  return import(pathToFileURL(path.join(PEERS_DIR, 'node_modules', rel)).href);
}

/** Reads a peer's installed version. */
export async function peerVersion(pkg: string): Promise<string> {
  const { readFileSync } = await import('node:fs');
  return JSON.parse(readFileSync(path.join(PEERS_DIR, 'node_modules', pkg, 'package.json'), 'utf8')).version;
}

export const GELU_C = Math.sqrt(2 / Math.PI);
