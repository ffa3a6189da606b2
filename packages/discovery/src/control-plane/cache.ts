/**
 * The disk copy of the last good config: `{ format: 1, address, savedAt, versions, services }`,
 * written atomically (temporary file, fsync, rename, then fsync of the directory where the
 * platform allows) so a crash leaves either the old file or the new one, never half of one.
 * Async I/O only.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { ServiceConfig } from '@meshlet/core';

export const CACHE_FORMAT = 1;

export interface CacheContents {
  format: typeof CACHE_FORMAT;
  address: string;
  /** ISO 8601 time of the write. */
  savedAt: string;
  /** Last accepted version per type URL. */
  versions: Record<string, string>;
  services: Record<string, ServiceConfig>;
}

/** The cache file of a control plane address inside `dir` (one file per address). */
export function cacheFile(dir: string, address: string): string {
  return join(dir, `meshlet-control-plane-${address.replace(/[^A-Za-z0-9.-]/g, '_')}.json`);
}

export async function writeCacheFile(file: string, dir: string, contents: CacheContents): Promise<void> {
  await mkdir(dir, { recursive: true });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fh = await open(tmp, 'w', 0o644);
  try {
    await fh.writeFile(JSON.stringify(contents));
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  // Make the rename itself durable. Not possible on every platform (Windows): best effort.
  try {
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    // directory fsync unsupported here
  }
}

/**
 * Reads and checks the shape of a cache file. `undefined` when there is none; throws an Error
 * whose message says what is wrong for a file that exists but is unusable.
 */
export async function readCacheFile(file: string, address: string): Promise<CacheContents | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`cannot be read (${(err as Error).message})`, { cause: err });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new Error(`is not valid JSON (${(err as Error).message})`, { cause: err });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new Error('does not hold a JSON object');
  const c = parsed as Record<string, unknown>;
  if (c.format !== CACHE_FORMAT) throw new Error(`has format ${JSON.stringify(c.format)}, expected ${CACHE_FORMAT}`);
  if (c.address !== address)
    throw new Error(`was written for control plane ${JSON.stringify(c.address)}, not ${address}`);
  if (typeof c.services !== 'object' || c.services === null || Array.isArray(c.services))
    throw new Error('has no "services" object');
  const versions: Record<string, string> = {};
  if (typeof c.versions === 'object' && c.versions !== null) {
    for (const [k, v] of Object.entries(c.versions)) if (typeof v === 'string') versions[k] = v;
  }
  return {
    format: CACHE_FORMAT,
    address,
    savedAt: typeof c.savedAt === 'string' ? c.savedAt : '',
    versions,
    services: c.services as Record<string, ServiceConfig>,
  };
}
