/**
 * Large config files are parsed on a worker thread (the event loop keeps serving), with the
 * same result and the same errors (file, line, column, config path) as in-thread parsing.
 * Worker creation is observed through `process.on('worker')`.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { after, before, describe, it } from 'node:test';
import { MeshConfigError, type DiscoverySnapshot } from '@meshlet/core';
import {
  ConfigFileError,
  ConfigFileSchemaError,
  parseConfigText,
  readConfigFile,
  watchFile,
} from '../../src/file/index.js';
import { deserializeError, OFF_THREAD_MIN_CHARS, serializeError } from '../../src/file/off-thread.js';

let dir: string;
const started: Worker[] = [];
const onWorker = (worker: Worker): void => {
  started.push(worker);
};
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meshlet-off-thread-'));
  process.on('worker', onWorker);
});
after(async () => {
  process.off('worker', onWorker);
  await rm(dir, { recursive: true, force: true });
});

/** A YAML mesh of `services` × 10 endpoints. */
function bigYaml(services: number): string {
  let text = 'services:\n';
  for (let s = 0; s < services; s++) {
    text += `  svc-${s}:\n    endpoints:\n`;
    for (let e = 0; e < 10; e++) text += `      - 10.${s >> 8}.${s & 255}.${e}:8080\n`;
  }
  return text;
}

/** Just over the in-place limit: a worker costs seconds of start-up under tsx, parsing adds to it. */
const BIG = bigYaml(2050);

describe('parsing off the event loop', () => {
  it('parses large YAML files on workers, with the same results and errors (file, line, column, path) as in place', async () => {
    assert.ok(BIG.length >= OFF_THREAD_MIN_CHARS.yaml, `${BIG.length} characters`);
    const good = join(dir, 'big.yaml');
    const invalid = join(dir, 'schema.yaml');
    await writeFile(good, BIG);
    await writeFile(invalid, `${BIG}  svc-x: { endpoints: ["10.0.0.1"], retry: { maxAttempts: 0 } }\n`);
    const before = started.length;
    // Two workers at once (each costs seconds of start-up under tsx).
    const [loaded, schema] = await Promise.allSettled([readConfigFile(good), readConfigFile(invalid)]);
    assert.equal(started.length, before + 2, 'one worker per large file');

    assert.equal(loaded.status, 'fulfilled');
    const { config, resolved, text } = loaded.value;
    assert.equal(text, BIG);
    assert.equal(resolved.services.size, 2050);
    assert.deepEqual(config.services['svc-2049'], {
      endpoints: Array.from({ length: 10 }, (_, e) => `10.8.1.${e}:8080`),
    });

    assert.equal(schema.status, 'rejected');
    const serr = schema.reason as unknown;
    assert.ok(serr instanceof ConfigFileSchemaError && serr instanceof MeshConfigError, String(serr));
    assert.equal(serr.file, invalid);
    assert.deepEqual(serr.issues.map((i) => i.path).sort(), [
      'services.svc-x.endpoints[0]',
      'services.svc-x.retry.maxAttempts',
    ]);
    assert.equal(serr.line, 24_602);
    assert.ok(serr.message.startsWith(`${invalid}:24602:${serr.column}: ${serr.path}: `), serr.message);

    const small = join(dir, 'small.yaml');
    await writeFile(small, bigYaml(3));
    await readConfigFile(small);
    assert.equal(started.length, before + 2, 'no worker for a small file');
  });

  it('carries syntax and schema errors across the thread boundary intact', () => {
    const cross = (err: unknown): Error => deserializeError(structuredClone(serializeError(err)), 'mesh.yaml');
    const syntax = new ConfigFileError('mesh.yaml', 'syntax', 'invalid YAML: bad indent', { line: 7, column: 3 });
    const back = cross(syntax);
    assert.ok(back instanceof ConfigFileError);
    assert.deepEqual([back.message, back.reason, back.line, back.column], [syntax.message, 'syntax', 7, 3]);
    const schema = new ConfigFileSchemaError(
      'mesh.yaml',
      new MeshConfigError([
        { path: 'services.a.retry.maxAttempts', message: 'expected an integer >= 1, got 0' },
        { path: 'services.b', message: 'unknown key' },
      ]),
      { line: 4, column: 9 },
    );
    const schemaBack = cross(schema);
    assert.ok(schemaBack instanceof ConfigFileSchemaError && schemaBack instanceof MeshConfigError);
    assert.equal(schemaBack.message, schema.message);
    assert.deepEqual(schemaBack.issues, schema.issues);
    assert.deepEqual([schemaBack.path, schemaBack.line, schemaBack.column], ['services.a.retry.maxAttempts', 4, 9]);
    const other = cross(new RangeError('Maximum call stack size exceeded'));
    assert.ok(other instanceof ConfigFileError);
    assert.equal(other.message, 'mesh.yaml: cannot parse it: Maximum call stack size exceeded');
  });

  it('watchFile delivers a large file parsed on a worker, and close() stops a parse in progress', async () => {
    const path = join(dir, 'watched.yaml');
    await writeFile(path, BIG);
    const updates: DiscoverySnapshot[] = [];
    const errors: Error[] = [];
    const sink = { update: (s: DiscoverySnapshot) => void updates.push(s), error: (e: Error) => void errors.push(e) };

    const source = watchFile(path);
    source.start(sink, { service: undefined });
    const deadline = Date.now() + 30_000;
    while (updates.length === 0 && errors.length === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    await source.close();
    assert.deepEqual(errors, []);
    assert.equal(updates.length, 1);
    assert.equal(Object.keys(updates[0]!.services).length, 2050);

    // Closed while its first read or parse runs: nothing is delivered, the worker (if any) ends.
    const before = started.length;
    const second = watchFile(path);
    second.start(sink, { service: undefined });
    await new Promise((r) => setTimeout(r, 50));
    await second.close();
    const worker = started[before];
    if (worker !== undefined) {
      await new Promise<void>((resolve) => {
        if (worker.threadId === -1) resolve();
        else worker.once('exit', () => resolve());
      });
    }
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(updates.length, 1);
    assert.deepEqual(errors, []);
  });
});
