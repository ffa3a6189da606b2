/**
 * Notices changes to one file: `fs.watch` on its directory (so an editor's
 * write-to-temp-then-rename save, and a delete + recreate, are seen; a watch on the file itself
 * would follow the old inode) plus a periodic `stat` as a fallback for file systems where
 * fs.watch misses events (network mounts, some containers). Both only *suggest* a change:
 * `onChange` runs debounced, and the caller re-reads and compares the content.
 *
 * Two debounces: a file renamed over the existing one (an atomic save: editors, `kubectl cp`,
 * config tools) is complete when the event arrives, so it is read after {@link RENAME_DEBOUNCE_MS}
 * (just enough to take the burst of events one save makes), unless the rename took the file
 * *away* (the first half of a delete-and-recreate), which waits the full debounce for the new
 * file. In-place writes (`change` events) and files created where there was none may still be
 * under way, so they wait `debounceMs` after the last event.
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
  private debounceIsShort = false;
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

  /**
   * Starts watching. `baseline`: the file's `statKey` when its content was last read; if the file
   * has changed since (an edit before the watch was set up), a change is scheduled with the full
   * debounce, as for any in-place write, so a file still being written is not read half-way.
   */
  async start(baseline?: string): Promise<void> {
    this.lastStat = await statKey(this.path);
    if (this.closed) return;
    const changedBefore = baseline !== undefined && baseline !== this.lastStat;
    try {
      this.watcher = watch(this.dir, { persistent: false }, (event, name) => {
        // Some platforms give no file name: treat it as "maybe ours".
        if (name === null || name === undefined || String(name) === this.base) this.schedule(event === 'rename');
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
    if (changedBefore) this.schedule(false);
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
        this.schedule(false);
      }
    } finally {
      this.polling = false;
    }
  }

  /** `renamed`: the event was a rename of the file (see the class comment). */
  private schedule(renamed: boolean): void {
    if (this.closed) return;
    // A rename that brings the name into being where there was no file is a creation, and a file
    // created in place may still be being written: only a replacement of an existing file is short.
    if (this.lastStat === MISSING) renamed = false;
    // A pending full-length wait is not cut short by a rename: an in-place write may be under way.
    if (this.debounce !== undefined && renamed && !this.debounceIsShort) return;
    if (this.debounce !== undefined) clearTimeout(this.debounce);
    this.debounceIsShort = renamed;
    this.debounce = setTimeout(
      () => {
        this.debounce = undefined;
        if (this.closed) return;
        void statKey(this.path).then((key) => {
          if (this.closed) return;
          this.lastStat = key;
          if (renamed && key === MISSING) {
            // Renamed away: give the replacement the full debounce to appear.
            this.schedule(false);
            return;
          }
          this.options.onChange();
        });
      },
      renamed ? Math.min(RENAME_DEBOUNCE_MS, this.options.debounceMs) : this.options.debounceMs,
    );
    this.debounce.unref();
  }
}

/** How long a rename of the file waits for the rest of its burst of events. */
export const RENAME_DEBOUNCE_MS = 2;

const MISSING = 'missing';

/** mtime, size and inode, or 'missing'. */
export async function statKey(path: string): Promise<string> {
  try {
    const s = await stat(path);
    return `${s.mtimeMs}:${s.size}:${s.ino}`;
  } catch {
    return MISSING;
  }
}
