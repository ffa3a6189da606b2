/**
 * watchFile on real temp files, with a recording sink in place of the mesh: first load, edits,
 * editor-style atomic saves, invalid edits (last good kept), deletion and re-creation, a file
 * missing at start, the stat poll alone, and a clean close. Waits are bounded conditions on
 * what the sink saw, never assertions on how fast it happened.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { MeshConfigError, type DiscoverySink, type DiscoverySnapshot, type DiscoverySource } from '@meshlet/core';
import { ConfigFileError, ConfigFileSchemaError, watchFile, type WatchFileOptions } from '../../src/file/index.js';

let root: string;
let n = 0;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'meshlet-watch-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A fresh directory per test, so one test's events never reach another's watcher. */
async function freshDir(): Promise<string> {
  const dir = join(root, `t${n++}`);
  await mkdir(dir);
  return dir;
}

/** Stands in for the mesh: records updates and errors; `reject` makes `update` throw as the mesh's merge would. */
class RecordingSink implements DiscoverySink {
  readonly updates: DiscoverySnapshot[] = [];
  readonly errors: Error[] = [];
  updateCalls = 0;
  reject: ((snapshot: DiscoverySnapshot) => void) | undefined;
  update(snapshot: DiscoverySnapshot): void {
    this.updateCalls++;
    this.reject?.(snapshot);
    this.updates.push(snapshot);
  }
  error(err: Error): void {
    this.errors.push(err);
  }
  /** Endpoints of `service` in the last update. */
  endpoints(service: string): unknown {
    return this.updates.at(-1)?.services[service]?.endpoints;
  }
}

const sources: DiscoverySource[] = [];
afterEach(async () => {
  await Promise.all(sources.splice(0).map((s) => s.close()));
});

function start(path: string, options?: WatchFileOptions): { source: DiscoverySource; sink: RecordingSink } {
  const source = watchFile(path, options);
  sources.push(source);
  const sink = new RecordingSink();
  source.start(sink, { service: undefined });
  return { source, sink };
}

/** Waits until `condition` holds; fails naming `what` after 10 s (a bound, not a speed check). */
async function until(what: string, condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Lets any pending watch events, debounce timers and reads settle. */
async function settle(ms = 400): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/**
 * Replaces a file atomically (temp file + rename), so no check can see it half written; used
 * where a test asserts the exact errors reported.
 */
async function save(path: string, content: string): Promise<void> {
  const tmp = `${path}.${n++}.tmp`;
  await writeFile(tmp, content);
  await rename(tmp, path);
}

function yaml(...endpoints: string[]): string {
  return `services:\n  users:\n    endpoints: [${endpoints.map((e) => JSON.stringify(e)).join(', ')}]\n`;
}

describe('watchFile', () => {
  it('loads a YAML file at start and delivers its services', async () => {
    const path = join(await freshDir(), 'mesh.yaml');
    await writeFile(path, yaml('10.0.0.1:80'));
    const { source, sink } = start(path);
    assert.equal(source.name, `file ${path}`);
    assert.equal(sink.updateCalls, 0, 'start() reads asynchronously');
    await until('the first update', () => sink.updates.length === 1);
    assert.deepEqual(sink.endpoints('users'), ['10.0.0.1:80']);
    assert.deepEqual(sink.errors, []);
    assert.match(source.describe(), new RegExp(`^file ${path}: loaded 1 service at \\d{4}-.*Z \\(load #1\\)$`));
  });

  it('loads a JSON file', async () => {
    const path = join(await freshDir(), 'mesh.json');
    await writeFile(path, JSON.stringify({ services: { users: { endpoints: ['10.0.0.1:80'] }, orders: {} } }));
    const { sink } = start(path);
    await until('the first update', () => sink.updates.length === 1);
    assert.deepEqual(Object.keys(sink.updates[0]!.services), ['users', 'orders']);
  });

  it('delivers an edit in place', async () => {
    const path = join(await freshDir(), 'mesh.yaml');
    await writeFile(path, yaml('10.0.0.1:80'));
    const { sink } = start(path);
    await until('the first update', () => sink.updates.length === 1);
    await writeFile(path, yaml('10.0.0.1:80', '10.0.0.2:80'));
    await until('the edit', () => sink.updates.length === 2);
    assert.deepEqual(sink.endpoints('users'), ['10.0.0.1:80', '10.0.0.2:80']);
  });

  it('delivers an editor-style save: write a temp file, rename it over the original', async () => {
    const dir = await freshDir();
    const path = join(dir, 'mesh.yaml');
    await writeFile(path, yaml('10.0.0.1:80'));
    const { sink } = start(path, { pollMs: 3_600_000 }); // the watch alone must see each save
    await until('the first update', () => sink.updates.length === 1);
    for (const next of ['10.0.0.3:80', '10.0.0.4:80']) {
      const tmp = join(dir, `.mesh.yaml.${next}.tmp`);
      await writeFile(tmp, yaml(next));
      await rename(tmp, path);
      await until(`the save of ${next}`, () => (sink.endpoints('users') as string[])[0] === next);
    }
    assert.equal(sink.updates.length, 3);
    assert.deepEqual(sink.errors, []);
  });

  it('follows a Kubernetes ConfigMap update (an atomic swap of the ..data symlink) through fs.watch', async () => {
    const dir = await freshDir();
    const path = join(dir, 'mesh.yaml');
    // The kubelet's layout: mesh.yaml -> ..data/mesh.yaml, ..data -> ..<version> (a directory).
    await mkdir(join(dir, '..v1'));
    await writeFile(join(dir, '..v1', 'mesh.yaml'), yaml('10.0.0.1:80'));
    await symlink('..v1', join(dir, '..data'));
    await symlink(join('..data', 'mesh.yaml'), path);
    // The poll is an hour away: only the directory watch can see this update in time.
    const { sink } = start(path, { pollMs: 3_600_000 });
    await until('the first update', () => sink.updates.length === 1);
    await mkdir(join(dir, '..v2'));
    await writeFile(join(dir, '..v2', 'mesh.yaml'), yaml('10.0.0.2:80'));
    await symlink('..v2', join(dir, '..data_tmp'));
    await rename(join(dir, '..data_tmp'), join(dir, '..data'));
    await until('the swapped config', () => sink.updates.length === 2);
    assert.deepEqual(sink.endpoints('users'), ['10.0.0.2:80']);
    assert.deepEqual(sink.errors, []);
  });

  it('is not held back by a busy directory: events of other files do not postpone the check', async () => {
    const dir = await freshDir();
    const path = join(dir, 'mesh.yaml');
    await writeFile(path, yaml('10.0.0.1:80'));
    const { sink } = start(path, { pollMs: 3_600_000 });
    await until('the first update', () => sink.updates.length === 1);
    await save(path, yaml('10.0.0.2:80'));
    // Another file written every 20 ms, more often than the 100 ms debounce, until the edit
    // arrives: if those events reset the debounce timer, the edit would wait for the storm to end.
    let writes = 0;
    const storm = (async () => {
      while (sink.updates.length < 2 && writes < 500) {
        await writeFile(join(dir, 'app.log'), `line ${writes++}\n`);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await until('the edit during the storm', () => sink.updates.length === 2 || writes >= 500);
    await storm;
    assert.equal(sink.updates.length, 2, `the edit arrived only after ${writes} writes to another file`);
    assert.deepEqual(sink.errors, []);
  });

  it('collapses a burst of writes into one update (debounce)', async () => {
    const path = join(await freshDir(), 'mesh.yaml');
    await writeFile(path, yaml('10.0.0.1:80'));
    const { sink } = start(path);
    await until('the first update', () => sink.updates.length === 1);
    // Synchronous writes: no timer or watch callback can run between them.
    for (let i = 2; i <= 20; i++) writeFileSync(path, yaml(`10.0.0.${i}:80`));
    await until('the final content', () => (sink.endpoints('users') as string[])[0] === '10.0.0.20:80');
    await settle();
    assert.equal(sink.updates.length, 2);
  });

  it('reports an invalid edit with file and line, keeps the last good config (no update), and recovers', async () => {
    const path = join(await freshDir(), 'mesh.yaml');
    await save(path, yaml('10.0.0.1:80'));
    const { source, sink } = start(path);
    await until('the first update', () => sink.updates.length === 1);

    await save(path, `services:\n  users:\n    endpoints: ["10.0.0.1:80"\n`);
    await until('the syntax error', () => sink.errors.length === 1);
    const syntax = sink.errors[0]!;
    assert.ok(syntax instanceof ConfigFileError, String(syntax));
    assert.equal(syntax.reason, 'syntax');
    assert.ok(syntax.message.startsWith(`${path}:4:`), syntax.message);
    assert.match(
      source.describe(),
      /loaded 1 service .*; last error at .*invalid YAML.*\(the last good config keeps serving\)$/,
    );

    await save(path, `services:\n  users:\n    endpoints: ["10.0.0.1"]\n`);
    await until('the schema error', () => sink.errors.length === 2);
    const schema = sink.errors[1]!;
    assert.ok(schema instanceof ConfigFileSchemaError, String(schema));
    assert.equal(schema.path, 'services.users.endpoints[0]');
    assert.ok(schema.message.startsWith(`${path}:3:17: services.users.endpoints[0]: `), schema.message);

    assert.equal(sink.updateCalls, 1, 'an invalid file never reaches the mesh');
    await save(path, yaml('10.0.0.9:80'));
    await until('the fixed file', () => sink.updates.length === 2);
    assert.deepEqual(sink.endpoints('users'), ['10.0.0.9:80']);
  });

  it('delivers a file whose routes name services that other sources define (the mesh checks the merge)', async () => {
    const path = join(await freshDir(), 'mesh.yaml');
    await save(
      path,
      `services:\n  api:\n    endpoints: ["10.0.0.1:80"]\n    routes: [{ backends: [{ service: users }] }]\n`,
    );
    const { sink } = start(path);
    await until('the update', () => sink.updates.length === 1);
    assert.deepEqual(sink.errors, []);
    assert.deepEqual(Object.keys(sink.updates[0]!.services), ['api']);
  });

  it('reports a config the mesh rejects (sink.update throws MeshConfigError) with the file named', async () => {
    const path = join(await freshDir(), 'mesh.yaml');
    await save(path, yaml('10.0.0.1:80'));
    const { sink } = start(path);
    await until('the first update', () => sink.updates.length === 1);
    sink.reject = () => {
      throw new MeshConfigError([{ path: 'services.users', message: 'also defined by control plane 127.0.0.1:15010' }]);
    };
    await save(path, yaml('10.0.0.2:80'));
    await until('the rejection', () => sink.errors.length === 1);
    const err = sink.errors[0]!;
    assert.ok(err instanceof ConfigFileSchemaError, String(err));
    assert.equal(err.message, `${path}:2:3: services.users: also defined by control plane 127.0.0.1:15010`);
    assert.equal(err.path, 'services.users');
    assert.equal(sink.updates.length, 1);

    // The same from another copy of @meshlet/core (another class, the same stable code).
    sink.reject = () => {
      throw Object.assign(new Error('services.users.retry: no'), {
        code: 'MESHLET_ERR_CONFIG',
        path: 'services.users.retry',
        issues: [{ path: 'services.users.retry', message: 'no' }],
      });
    };
    await save(path, yaml('10.0.0.3:80'));
    await until('the second rejection', () => sink.errors.length === 2);
    const other = sink.errors[1]!;
    assert.ok(other instanceof ConfigFileSchemaError, String(other));
    assert.equal(other.message, `${path}: services.users.retry: no`);
  });

  it('survives the file being deleted, and loads it again when it is recreated', async () => {
    const path = join(await freshDir(), 'mesh.yaml');
    await save(path, yaml('10.0.0.1:80'));
    const { sink } = start(path);
    await until('the first update', () => sink.updates.length === 1);
    await unlink(path);
    await until('the deletion report', () => sink.errors.length === 1);
    const gone = sink.errors[0]!;
    assert.ok(gone instanceof ConfigFileError && gone.reason === 'not-found', String(gone));
    assert.match(
      gone.message,
      /not found \(deleted or renamed\?\): the config loaded at .* keeps serving; restore the file$/,
    );
    assert.equal(sink.updates.length, 1);
    // Recreated with the same content: still delivered, so the mesh knows the file is back.
    await save(path, yaml('10.0.0.1:80'));
    await until('the recreated file', () => sink.updates.length === 2);
    await save(path, yaml('10.0.0.2:80'));
    await until('an edit after recreation', () => sink.updates.length === 3);
    assert.deepEqual(sink.endpoints('users'), ['10.0.0.2:80']);
    assert.equal(sink.errors.length, 1);
  });

  it('reports a file missing at start once, stays not ready, and loads it when it appears', async () => {
    const path = join(await freshDir(), 'mesh.yaml');
    const { source, sink } = start(path, { pollMs: 50 });
    await until('the not-found report', () => sink.errors.length === 1);
    const err = sink.errors[0]!;
    assert.ok(err instanceof ConfigFileError && err.reason === 'not-found', String(err));
    assert.equal(err.message, `${path}: not found: create the file or fix the path`);
    assert.match(source.describe(), /: not loaded yet; last error at .*not found/);
    await settle(300); // several polls
    assert.equal(sink.errors.length, 1, 'the poll does not repeat the same problem');
    assert.equal(sink.updateCalls, 0);

    await save(path, yaml('10.0.0.1:80'));
    await until('the file appearing', () => sink.updates.length === 1);
    assert.deepEqual(sink.endpoints('users'), ['10.0.0.1:80']);
  });

  it('waits for a directory that does not exist yet', async () => {
    const dir = join(await freshDir(), 'later');
    const path = join(dir, 'mesh.json');
    const { sink } = start(path, { pollMs: 50 });
    await until('the not-found report', () => sink.errors.length === 1);
    await mkdir(dir);
    await writeFile(path, JSON.stringify({ services: { users: { endpoints: ['10.0.0.1:80'] } } }));
    await until('the file appearing', () => sink.updates.length === 1);
    // Edits keep arriving (through the watcher opened on the new directory, or the poll).
    await writeFile(path, JSON.stringify({ services: { users: { endpoints: ['10.0.0.2:80'] } } }));
    await until('an edit', () => sink.updates.length === 2);
  });

  it('follows the file when its directory is deleted and recreated', async () => {
    const dir = await freshDir();
    const path = join(dir, 'mesh.yaml');
    await save(path, yaml('10.0.0.1:80'));
    const { sink } = start(path, { pollMs: 50 });
    await until('the first update', () => sink.updates.length === 1);
    await rm(dir, { recursive: true });
    await until('the deletion report', () => sink.errors.length === 1);
    await mkdir(dir);
    await save(path, yaml('10.0.0.2:80'));
    await until('the file in the new directory', () => sink.updates.length === 2);
    await save(path, yaml('10.0.0.3:80'));
    await until('an edit in the new directory', () => sink.updates.length === 3);
    assert.deepEqual(sink.endpoints('users'), ['10.0.0.3:80']);
  });

  it('sees changes through the stat poll alone when fs.watch is off', async () => {
    const path = join(await freshDir(), 'mesh.yaml');
    await writeFile(path, yaml('10.0.0.1:80'));
    const { sink } = start(path, { watch: false, pollMs: 50 });
    await until('the first update', () => sink.updates.length === 1);
    // Same size as before; the poll sees the new mtime (or, on coarse-mtime filesystems, re-reads a racily clean file).
    await writeFile(path, yaml('10.0.0.2:80'));
    await until('the edit, via the poll', () => sink.updates.length === 2);
    assert.deepEqual(sink.endpoints('users'), ['10.0.0.2:80']);
    await settle(300);
    assert.equal(sink.updates.length, 2, 'unchanged content is not delivered again');
  });

  it('stops reading and reporting after close()', async () => {
    const path = join(await freshDir(), 'mesh.yaml');
    await writeFile(path, yaml('10.0.0.1:80'));
    const { source, sink } = start(path, { pollMs: 20, debounceMs: 0 });
    await until('the first update', () => sink.updates.length === 1);
    await source.close();
    await writeFile(path, yaml('10.0.0.2:80'));
    await unlink(path);
    await settle(200);
    assert.equal(sink.updateCalls, 1);
    assert.deepEqual(sink.errors, []);
    assert.match(source.describe(), /: closed; loaded 1 service/);
  });

  it('turns every failure into sink.error, never an unhandled rejection, even when the sink throws', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const path = join(await freshDir(), 'mesh.yaml');
      await save(path, yaml('10.0.0.1:80'));
      const errors: Error[] = [];
      let calls = 0;
      const source = watchFile(path, { pollMs: 50 });
      sources.push(source);
      source.start(
        {
          update: () => {
            calls++;
            throw new TypeError('the mesh broke');
          },
          error: (err) => {
            errors.push(err);
            throw new Error('and so did its error sink');
          },
        },
        { service: undefined },
      );
      await until('the failure report', () => errors.length === 1);
      assert.equal(calls, 1);
      assert.ok(errors[0] instanceof TypeError && errors[0].message === 'the mesh broke', String(errors[0]));
      assert.match(source.describe(), /not loaded yet; last error at .*: the mesh broke$/);
      // A directory where the file should be: reported, once.
      await rm(path);
      await mkdir(path);
      await until('the directory report', () => errors.some((e) => /is not a regular file/.test(e.message)));
      await settle(300);
      // On a loaded machine the rm and the mkdir may be read apart: the file's absence is then
      // reported first. Either way the directory is reported exactly once and nothing else is.
      const later = errors.slice(1).map((e) => e.message);
      assert.equal(later.filter((m) => /mesh\.yaml: is not a regular file/.test(m)).length, 1, later.join(' | '));
      assert.ok(later.length <= 2 && later.every((m) => /is not a regular file|not found/.test(m)), later.join(' | '));
      assert.throws(
        () => source.start({ update() {}, error() {} }, { service: undefined }),
        /start\(\) was called twice/,
      );
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('validates its options and the file name up front', () => {
    assert.throws(() => watchFile('mesh.toml'), /must end in \.json, \.yaml or \.yml/);
    assert.throws(
      () => watchFile('mesh.yaml', { debounceMs: -1 }),
      (err: unknown) => {
        assert.ok(err instanceof MeshConfigError);
        assert.equal(
          err.message,
          'watchFile options.debounceMs: expected an integer from 0 to 2147483647 (ms), got -1',
        );
        return true;
      },
    );
    assert.throws(() => watchFile('mesh.yaml', { pollMs: 0 }), /options\.pollMs/);
  });
});
