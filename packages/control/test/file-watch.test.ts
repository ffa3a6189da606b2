// FileWatch: an atomic save (rename into place) is read at once; in-place writes and a
// delete-and-recreate wait the full debounce. Real files, real fs.watch.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, unlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rename, rm, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FileWatch, statKey } from '../src/file-watch.js';

// Wide enough that a loaded CI machine cannot stretch the tests' own pauses (50-100 ms) past it,
// nor a rename's read (a couple of ms) past half of it.
const DEBOUNCE_MS = 1500;

/** A watch on `file` that records when each change is reported; not started. */
function watchOf(file: string, changes: number[], debounceMs = DEBOUNCE_MS): FileWatch {
  return new FileWatch(file, {
    debounceMs,
    pollMs: 60_000,
    onChange: () => changes.push(performance.now()),
    onWatchError: (err) => assert.fail(`fs.watch failed: ${err.message}`),
  });
}

async function setup(): Promise<{ file: string; dir: string; changes: number[]; watch: FileWatch }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'meshlet-file-watch-'));
  const file = path.join(dir, 'mesh.json');
  await writeFile(file, '{"services":{}}');
  const changes: number[] = [];
  const watch = watchOf(file, changes);
  await watch.start();
  return { file, dir, changes, watch };
}

async function until(cond: () => boolean, ms: number): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) return;
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('FileWatch', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('reads a file renamed into place well before the full debounce', async () => {
    const { file, dir, changes, watch } = await setup();
    dirs.push(dir);
    try {
      await writeFile(`${file}.tmp`, '{"services":{"a":{}}}');
      const t0 = performance.now();
      await rename(`${file}.tmp`, file);
      await until(() => changes.length > 0, DEBOUNCE_MS + 3000);
      assert.equal(changes.length, 1, 'one change for one save');
      // The full debounce is 1.5 s; a rename is read after a couple of ms (generous bound for CI).
      assert.ok(changes[0]! - t0 < DEBOUNCE_MS / 2, `read after ${(changes[0]! - t0).toFixed(0)} ms`);
    } finally {
      watch.close();
    }
  });

  it('an edit made before the watch started (after the baseline read) is read once, after the full debounce', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'meshlet-file-watch-'));
    dirs.push(dir);
    const file = path.join(dir, 'mesh.json');
    writeFileSync(file, '{"services":{}}');
    const baseline = await statKey(file);
    // The edit lands between the server's first read and the watch's start (a different size, so
    // the stat differs even on a coarse-mtime file system).
    writeFileSync(file, '{"services":{"a":{}}}');
    const changes: number[] = [];
    const watch = watchOf(file, changes);
    const t0 = performance.now();
    await watch.start(baseline);
    try {
      await until(() => changes.length > 0, DEBOUNCE_MS + 3000);
      assert.equal(changes.length, 1, 'the edit before the watch was not seen');
      assert.ok(
        changes[0]! - t0 >= DEBOUNCE_MS - 5,
        `read ${(changes[0]! - t0).toFixed(0)} ms after start, not after the debounce`,
      );
      // The same baseline as the file: nothing to read.
      const quiet: number[] = [];
      const again = watchOf(file, quiet, 50);
      await again.start(await statKey(file));
      await new Promise((r) => setTimeout(r, 300));
      again.close();
      assert.deepEqual(quiet, []);
    } finally {
      watch.close();
    }
  });

  it('waits the full debounce after an in-place write', async () => {
    const { file, dir, changes, watch } = await setup();
    dirs.push(dir);
    try {
      const t0 = performance.now();
      await writeFile(file, '{"services":{"b":{}}}');
      await until(() => changes.length > 0, DEBOUNCE_MS + 3000);
      assert.equal(changes.length, 1);
      assert.ok(changes[0]! - t0 >= DEBOUNCE_MS - 5, `read after ${(changes[0]! - t0).toFixed(0)} ms`);
    } finally {
      watch.close();
    }
  });

  it('does not report a file deleted for a moment: the replacement gets the full debounce', async () => {
    const { file, dir, changes, watch } = await setup();
    dirs.push(dir);
    try {
      // Synchronous, 50 ms apart, well inside the debounce (async pairs can land far apart on a
      // loaded machine). Without the debounce the deletion alone would be reported in the pause.
      const t0 = performance.now();
      unlinkSync(file);
      await new Promise((r) => setTimeout(r, 50));
      writeFileSync(file, '{"services":{"c":{}}}');
      await until(() => changes.length > 0, DEBOUNCE_MS + 3000);
      assert.equal(changes.length, 1, 'one change, after the new file exists');
      assert.ok(changes[0]! - t0 >= DEBOUNCE_MS - 5, `read after ${(changes[0]! - t0).toFixed(0)} ms`);
    } finally {
      watch.close();
    }
  });

  it('waits the full debounce for a file created where there was none (it may still be being written)', async () => {
    const { file, dir, changes, watch } = await setup();
    dirs.push(dir);
    try {
      await unlink(file);
      await until(() => changes.length > 0, DEBOUNCE_MS + 3000); // the deletion is reported once
      const seen = changes.length;
      const t0 = performance.now();
      // Created empty (one 'rename' event, no 'change' yet), written a moment later (synchronously,
      // so that the pause stays well inside the debounce on a loaded machine).
      const fd = openSync(file, 'w');
      await new Promise((r) => setTimeout(r, 100));
      writeFileSync(fd, '{"services":{"d":{}}}');
      closeSync(fd);
      await until(() => changes.length > seen, DEBOUNCE_MS + 3000);
      assert.equal(changes.length, seen + 1, 'one change for the new file');
      assert.ok(changes[seen]! - t0 >= DEBOUNCE_MS - 5, `read after ${(changes[seen]! - t0).toFixed(0)} ms`);
    } finally {
      watch.close();
    }
  });
});
