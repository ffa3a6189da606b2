/**
 * Notices changes to one file: `fs.watch` on its directory (so an editor's
 * write-to-temp-then-rename save, and a delete + recreate, are seen; a watch on the file itself
 * would follow the old inode) plus a periodic `stat` as a fallback for file systems where
 * fs.watch misses events (network mounts, some containers). Both only *suggest* a change:
 * `onChange` runs debounced, and the caller re-reads and compares the content.
 */
import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';

export interface FileWatchOptions {
  /** Coalesce events within this many ms. */
  debounceMs: number;
  /** Stat the file this often as a fallback. */
  pollMs: number;
  onChange(): void;
  /** fs.watch could not be set up or failed (the stat poll keeps working). */
  onWatchError(err: Error): void;
}

export class FileWatch {
  private watcher: FSWatcher | undefined;
  private poll: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private lastStat = '';
  private polling = false;
  private closed = false;
  private readonly dir: string;
  private readonly base: string;

  constructor(
    private readonly path: string,
    private readonly options: FileWatchOptions,
  ) {
    this.dir = dirname(path);
    this.base = basename(path);
  }

  async start(): Promise<void> {
    this.lastStat = await statKey(this.path);
    if (this.closed) return;
    try {
      this.watcher = watch(this.dir, { persistent: false }, (_event, name) => {
        // Some platforms give no file name: treat it as "maybe ours".
        if (name === null || name === undefined || String(name) === this.base) this.schedule();
      });
      this.watcher.on('error', (err) => {
        this.options.onWatchError(err);
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch (err) {
      this.options.onWatchError(err as Error);
    }
    this.poll = setInterval(() => void this.pollOnce(), this.options.pollMs);
    this.poll.unref();
  }

  close(): void {
    this.closed = true;
    this.watcher?.close();
    this.watcher = undefined;
    if (this.poll !== undefined) clearInterval(this.poll);
    if (this.debounce !== undefined) clearTimeout(this.debounce);
    this.poll = this.debounce = undefined;
  }

  private async pollOnce(): Promise<void> {
    if (this.polling || this.closed) return;
    this.polling = true;
    try {
      const key = await statKey(this.path);
      if (key !== this.lastStat) {
        this.lastStat = key;
        this.schedule();
      }
    } finally {
      this.polling = false;
    }
  }

  private schedule(): void {
    if (this.closed) return;
    if (this.debounce !== undefined) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      if (this.closed) return;
      void statKey(this.path).then((key) => {
        this.lastStat = key;
      });
      this.options.onChange();
    }, this.options.debounceMs);
    this.debounce.unref();
  }
}

/** mtime, size and inode, or 'missing'. */
async function statKey(path: string): Promise<string> {
  try {
    const s = await stat(path);
    return `${s.mtimeMs}:${s.size}:${s.ino}`;
  } catch {
    return 'missing';
  }
}
