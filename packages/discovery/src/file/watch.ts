/**
 * `watchFile(path)`: a discovery source that serves a JSON or YAML mesh config file and follows
 * its edits. Edit the file and traffic follows; break it and the last good config keeps serving.
 *
 * Change detection has two legs, because neither is enough alone:
 * - `fs.watch` on the file's *directory*, not the file: editors save by writing a temporary file
 *   and renaming it over the original (a new inode a file watch never sees), some delete and
 *   recreate it, and Kubernetes ConfigMaps swap a `..data` symlink beside it. Such an event
 *   triggers a (debounced) check; a check costs one `stat` when nothing changed.
 * - a `stat` poll (every 2 s), for filesystems where `fs.watch` misses events or is unavailable
 *   (network mounts, some container overlays). It compares mtime, ctime, size, inode and device,
 *   and re-reads a file modified within 2 s of the last read ("racily clean", as git calls it:
 *   coarse mtimes cannot tell two writes in the same tick apart); a read whose content hash is
 *   unchanged delivers nothing.
 * Checks run one at a time; all I/O after `start()` is asynchronous, timers are unref'd, and a
 * large file is parsed on a worker thread (`off-thread.ts`), so a reload does not stall requests.
 */
import { createHash } from 'node:crypto';
import { watch, type FSWatcher, type Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import {
  MeshConfigError,
  type DiscoverySink,
  type DiscoverySource,
  type ServiceConfig,
  type SourceContext,
} from '@meshlet/core';
import { ConfigFileError, ConfigFileSchemaError } from './errors.js';
import {
  decodeConfigBytes,
  fileError,
  formatOf,
  parseConfigAsync,
  readConfigBytes,
  type ConfigFileFormat,
} from './parse.js';

/** Options of `watchFile`. */
export interface WatchFileOptions {
  /** Quiet time after the last change event before the file is read. Default 100 ms. */
  debounceMs?: number;
  /** Interval of the `stat` poll that catches changes `fs.watch` misses. Default 2000 ms. */
  pollMs?: number;
  /**
   * Watch the file's directory with `fs.watch`. Default true; with false only the poll sees
   * changes (for filesystems where `fs.watch` is unsupported).
   */
  watch?: boolean;
}

const MAX_TIMER_MS = 2_147_483_647;

/** Files modified this close to their last read are re-read on the next poll (coarse mtimes). */
const RACY_MS = 2000;

/**
 * A discovery source serving the mesh config in a JSON (`.json`) or YAML (`.yaml`, `.yml`) file
 * of the same shape as `createMesh`'s options (`{ services: { … } }`), re-read when it changes.
 * A missing, unreadable or invalid file is reported through `sink.error` (naming the file, and
 * the line or config path), and the last good config keeps serving; the source becomes ready
 * when the file first loads.
 */
export function watchFile(path: string, options: WatchFileOptions = {}): DiscoverySource {
  if (typeof path !== 'string' || path === '') {
    throw new MeshConfigError([{ path: 'watchFile(path)', message: `expected a file path, got ${String(path)}` }]);
  }
  formatOf(path); // an unsupported extension is a programming error: throw now, not at start
  const debounceMs = timerOption(options.debounceMs, 'debounceMs', 100, 0);
  const pollMs = timerOption(options.pollMs, 'pollMs', 2000, 1);
  const useWatch = options.watch ?? true;
  return new FileSource(path, debounceMs, pollMs, useWatch);
}

function timerOption(value: number | undefined, name: string, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min || value > MAX_TIMER_MS) {
    throw new MeshConfigError([
      {
        path: `watchFile options.${name}`,
        message: `expected an integer from ${min} to ${MAX_TIMER_MS} (ms), got ${String(value)}`,
      },
    ]);
  }
  return value;
}

interface FileIdentity {
  mtimeMs: number;
  ctimeMs: number;
  size: number;
  ino: number;
  dev: number;
}

class FileSource implements DiscoverySource {
  readonly name: string;
  private readonly path: string;
  private readonly absolute: string;
  private readonly format: ConfigFileFormat;
  private readonly debounceMs: number;
  private readonly pollMs: number;
  private readonly useWatch: boolean;

  private sink: DiscoverySink | undefined;
  private closed = false;
  /** Stops a parse running on a worker thread at close(). */
  private readonly abort = new AbortController();
  private watcher: FSWatcher | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  /** The check in progress, if any; checks never overlap. */
  private running: Promise<void> | undefined;
  /** A check was asked for while one ran: run another after it. */
  private again = false;

  /** Identity of the file as last read, and the wall time of that read. */
  private lastIdentity: FileIdentity | undefined;
  private lastReadAt = 0;
  /** Hash of the content last processed (good or bad): the same bytes are not processed twice. */
  private lastHash: string | undefined;
  /** Message of the last problem reported, so a poll does not repeat it every 2 s. */
  private reportedProblem: string | undefined;

  private loads = 0;
  private loadedAt: Date | undefined;
  private loadedServices = 0;
  private lastError: { at: Date; error: Error } | undefined;

  constructor(path: string, debounceMs: number, pollMs: number, useWatch: boolean) {
    this.name = `file ${path}`;
    this.path = path;
    this.absolute = resolve(path);
    this.format = formatOf(path);
    this.debounceMs = debounceMs;
    this.pollMs = pollMs;
    this.useWatch = useWatch;
  }

  start(sink: DiscoverySink, _context: SourceContext): void {
    if (this.sink !== undefined) throw new Error(`${this.name}: start() was called twice; a source is started once`);
    this.sink = sink;
    if (this.closed) return;
    this.openWatcher();
    this.pollTimer = setInterval(() => this.requestCheck(), this.pollMs);
    this.pollTimer.unref();
    this.requestCheck();
  }

  describe(): string {
    const loaded =
      this.loadedAt === undefined
        ? 'not loaded yet'
        : `loaded ${this.loadedServices} service${this.loadedServices === 1 ? '' : 's'} at ${this.loadedAt.toISOString()} (load #${this.loads})`;
    const error =
      this.lastError === undefined
        ? ''
        : `; last error at ${this.lastError.at.toISOString()}: ${this.lastError.error.message}` +
          (this.loadedAt !== undefined && this.lastError.at >= this.loadedAt
            ? ' (the last good config keeps serving)'
            : '');
    return `${this.name}: ${this.closed ? 'closed; ' : ''}${loaded}${error}`;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.pollTimer);
    clearTimeout(this.debounceTimer);
    this.pollTimer = this.debounceTimer = undefined;
    this.closeWatcher();
    this.abort.abort(new Error(`${this.name} was closed`));
    await this.running;
  }

  /** Watches the directory (see the file comment); failures fall back to the poll, which retries. */
  private openWatcher(): void {
    if (!this.useWatch || this.watcher !== undefined || this.closed) return;
    const name = basename(this.absolute);
    try {
      // Events that may concern the file: its own name (written, or a temp file renamed over it,
      // or deleted and recreated), a Kubernetes `..data` symlink swap, or an unnamed event. Others
      // (a busy directory) are ignored, so they cannot keep postponing the debounced check.
      const watcher = watch(dirname(this.absolute), { persistent: false }, (_event, filename) => {
        if (filename === null || filename === name || filename.startsWith('..')) this.changed();
      });
      watcher.on('error', () => {
        // E.g. the directory was removed: the poll carries on and reopens the watcher later.
        if (this.watcher === watcher) this.closeWatcher();
      });
      this.watcher = watcher;
    } catch {
      // The directory does not exist (yet), or watching is unsupported: the poll covers it.
    }
  }

  private closeWatcher(): void {
    const watcher = this.watcher;
    this.watcher = undefined;
    try {
      watcher?.close();
    } catch {
      // already closed
    }
  }

  /** A watch event: check after `debounceMs` of quiet. */
  private changed(): void {
    if (this.closed) return;
    clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined;
      this.requestCheck();
    }, this.debounceMs);
    this.debounceTimer.unref();
  }

  private requestCheck(): void {
    if (this.closed) return;
    if (this.running !== undefined) {
      this.again = true;
      return;
    }
    this.running = this.check()
      .catch((err: unknown) => this.report(err instanceof Error ? err : new Error(String(err))))
      .finally(() => {
        this.running = undefined;
        if (this.again && !this.closed) {
          this.again = false;
          this.requestCheck();
        }
      });
  }

  private async check(): Promise<void> {
    if (this.watcher === undefined) this.openWatcher();
    let current: Stats;
    try {
      current = await stat(this.absolute);
    } catch (err) {
      const error = fileError(this.path, err);
      if (error.reason === 'not-found') {
        this.gone();
        if (this.loadedAt !== undefined) {
          throw new ConfigFileError(
            this.path,
            'not-found',
            `not found (deleted or renamed?): the config loaded at ${this.loadedAt.toISOString()} keeps serving; restore the file`,
            undefined,
            { cause: err },
          );
        }
      }
      throw error;
    }
    if (this.lastIdentity !== undefined && sameFile(current, this.lastIdentity) && !this.racy(current)) return;

    const readAt = Date.now();
    const { bytes, stats } = await readConfigBytes(this.absolute, this.path, this.format);
    if (this.closed) return;
    this.lastIdentity = identity(stats);
    this.lastReadAt = readAt;
    const hash = createHash('sha256').update(bytes).digest('hex');
    if (hash === this.lastHash) return;
    this.lastHash = hash;

    const { parsed, locate } = await parseConfigAsync(
      decodeConfigBytes(bytes, this.path),
      this.path,
      this.format,
      // Other sources may define the services this file's routes name: the mesh checks the merge.
      { standalone: false },
      this.abort.signal,
    );
    if (this.closed) return;
    const { config } = parsed;
    const services: Record<string, ServiceConfig> = config.services ?? {};
    try {
      this.sink!.update({ services });
    } catch (err) {
      // The mesh refused the merge (e.g. a conflict with another source): name the file, and the
      // place in it when the path is the file's.
      if (isMeshConfigError(err)) throw new ConfigFileSchemaError(this.path, err, locate(err.path));
      throw err;
    }
    this.loads++;
    this.loadedAt = new Date();
    this.loadedServices = Object.keys(services).length;
    this.reportedProblem = undefined;
  }

  /**
   * The file is gone: whatever appears next at the path is new, even with the old content. The
   * directory may be gone too (a watch on it dies silently): watch the path's directory afresh.
   */
  private gone(): void {
    this.lastIdentity = undefined;
    this.lastHash = undefined;
    this.closeWatcher();
    this.openWatcher();
  }

  /** Modified so close to the last read that the same mtime could hide a later write. */
  private racy(current: Stats): boolean {
    return current.mtimeMs >= this.lastReadAt - RACY_MS;
  }

  private report(error: Error): void {
    if (this.closed) return;
    // The same problem seen again by the poll is not news (the message names the file and what is wrong).
    const key = error instanceof ConfigFileError && error.reason === 'not-found' ? 'not-found' : error.message;
    if (key === this.reportedProblem) return;
    this.reportedProblem = key;
    this.lastError = { at: new Date(), error };
    try {
      this.sink!.error(error);
    } catch {
      // The sink's own failure must not become an unhandled rejection in a timer.
    }
  }
}

function identity(stats: Stats): FileIdentity {
  return { mtimeMs: stats.mtimeMs, ctimeMs: stats.ctimeMs, size: stats.size, ino: stats.ino, dev: stats.dev };
}

function sameFile(stats: Stats, last: FileIdentity): boolean {
  return (
    stats.mtimeMs === last.mtimeMs &&
    stats.ctimeMs === last.ctimeMs &&
    stats.size === last.size &&
    stats.ino === last.ino &&
    stats.dev === last.dev
  );
}

/**
 * A `MeshConfigError`, also from another copy of `@meshlet/core` than this package's (two
 * installed versions, or sources and build mixed in development): matched by its stable code.
 */
function isMeshConfigError(err: unknown): err is MeshConfigError {
  if (err instanceof MeshConfigError) return true;
  const e = err as { code?: unknown; issues?: unknown; path?: unknown } | null;
  return (
    err instanceof Error && e!.code === 'MESHLET_ERR_CONFIG' && Array.isArray(e!.issues) && typeof e!.path === 'string'
  );
}
