// Request bodies: the replay rule and the caller-source tracker that tells a body's own fault
// (error, stall) from a network fault.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import {
  BODY_NONE,
  BODY_ONCE,
  BODY_REPLAYABLE,
  BODY_TO_BUFFER,
  CallerBody,
  REPLAY_BUFFER_LIMIT,
  bodyKind,
  readBody,
} from '../src/body.js';

describe('replay rule', () => {
  it('strings and bytes up to 64 KiB are replayable, larger ones are sent once', () => {
    assert.equal(bodyKind(undefined, NaN), BODY_NONE);
    assert.equal(bodyKind('x'.repeat(REPLAY_BUFFER_LIMIT), NaN), BODY_REPLAYABLE);
    assert.equal(bodyKind('x'.repeat(REPLAY_BUFFER_LIMIT + 1), NaN), BODY_ONCE);
    // 30 000 three-byte characters: 90 000 bytes although only 30 000 UTF-16 units.
    assert.equal(bodyKind('€'.repeat(30_000), NaN), BODY_ONCE);
    assert.equal(bodyKind(Buffer.alloc(REPLAY_BUFFER_LIMIT), NaN), BODY_REPLAYABLE);
    assert.equal(bodyKind(new Uint8Array(REPLAY_BUFFER_LIMIT + 1), NaN), BODY_ONCE);
  });

  it('streams and iterables are read for replay only when their content-length is within the limit', () => {
    assert.equal(bodyKind(Readable.from(['a']), 1), BODY_TO_BUFFER);
    assert.equal(bodyKind(Readable.from(['a']), REPLAY_BUFFER_LIMIT + 1), BODY_ONCE);
    assert.equal(bodyKind(Readable.from(['a']), NaN), BODY_ONCE);
    assert.equal(bodyKind([Buffer.from('a')], 1), BODY_TO_BUFFER);
    assert.equal(bodyKind(new Blob(['abc']), NaN), BODY_TO_BUFFER);
  });

  it('readBody returns one buffer, or the read part plus the rest when the stream is longer than announced', async () => {
    const holder = { cancel: undefined };
    const [whole] = await readBody(Readable.from([Buffer.from('ab'), 'cd']), holder);
    assert.equal(whole?.toString(), 'abcd');
    const big = Buffer.alloc(REPLAY_BUFFER_LIMIT, 1);
    const [none, rest] = await readBody(Readable.from([big, Buffer.from('x'), Buffer.from('y')]), holder);
    assert.equal(none, undefined);
    const parts: Buffer[] = [];
    for await (const c of rest!) parts.push(Buffer.from(c as Uint8Array));
    assert.equal(Buffer.concat(parts).length, REPLAY_BUFFER_LIMIT + 2);
  });
});

describe('CallerBody', () => {
  it('is waiting only while the caller’s source owes a chunk', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    async function* source() {
      yield 'a';
      await gate;
      yield 'b';
    }
    const body = CallerBody.of(source());
    assert.equal(body.waiting, false);
    assert.deepEqual(await body.next(), { value: 'a', done: false });
    assert.equal(body.waiting, false);
    const pending = body.next();
    assert.equal(body.waiting, true);
    release();
    assert.deepEqual(await pending, { value: 'b', done: false });
    assert.equal(body.waiting, false);
    assert.equal((await body.next()).done, true);
    assert.equal(body.failed, false);
  });

  it('records the source’s own error', async () => {
    const boom = new Error('source broke');
    async function* source() {
      yield 'a';
      throw boom;
    }
    const body = CallerBody.of(source());
    await body.next();
    await assert.rejects(body.next(), (e) => e === boom);
    assert.equal(body.failed, true);
    assert.equal(body.sourceError, boom);
  });

  it('cancel rejects a pending read of a stalled source and releases it', async () => {
    const stream = new Readable({ read() {} });
    const body = CallerBody.of(stream);
    const pending = body.next();
    assert.equal(body.waiting, true);
    const reason = new Error('cut');
    body.cancel(reason);
    await assert.rejects(pending, (e) => e === reason);
    assert.equal(body.failed, false, 'a cancel is not the source failing');
    await new Promise((r) => setImmediate(r));
    assert.equal(stream.destroyed, true);
  });
});
