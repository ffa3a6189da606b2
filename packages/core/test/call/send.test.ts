// `Mesh.send`: a call without a promise (what the gRPC client uses). The answer goes to the
// protocol's `deliver`, a failure to its `fail`, once, and never from inside `send` itself, on
// the fast path (a callback transport, `Protocol.start`) and on the promise paths alike. Also:
// a provisional answer keeps its concurrency slot and its endpoint's in-flight count until
// `reportOutcome`. Fake protocol, no sockets.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MeshError } from '../../src/errors.js';
import type { Protocol } from '../../src/protocol.js';
import type { CallContext } from '../../src/types.js';
import {
  fakeProtocol,
  get,
  hang,
  meshesClosedAfter,
  ok,
  refused,
  type Behaviour,
  type FakeReq,
  type FakeRes,
} from '../helpers/fake-protocol.js';

interface Outcome {
  delivered: FakeRes[];
  failed: unknown[];
  /** Set while `send` runs: a hook called then was called synchronously. */
  inSend: boolean;
  sync: string[];
  done: Promise<void>;
}

/** A protocol recording its deliver / fail hooks; `callback` adds the `start` (fast path) form. */
function recording(behaviour: Behaviour, callback: boolean): { protocol: Protocol<FakeReq, FakeRes>; out: Outcome } {
  let settle!: () => void;
  const out: Outcome = {
    delivered: [],
    failed: [],
    inSend: false,
    sync: [],
    done: new Promise((resolve) => (settle = resolve)),
  };
  const base = fakeProtocol(behaviour);
  const protocol: Protocol<FakeReq, FakeRes> = {
    ...base,
    deliver: (_req, res) => {
      if (out.inSend) out.sync.push('deliver');
      out.delivered.push(res);
      settle();
    },
    fail: (_req, err) => {
      if (out.inSend) out.sync.push('fail');
      out.failed.push(err);
      settle();
    },
  };
  if (callback) {
    protocol.start = (req, ctx, ep, sink) => {
      base.transport(req, ctx, ep).then(
        (res) => sink.attemptResolved(res),
        (err: unknown) => sink.attemptRejected(err),
      );
    };
  }
  return { protocol, out };
}

const codeOf = (err: unknown): string => (err instanceof MeshError ? err.code : `non-mesh: ${String(err)}`);

describe('Mesh.send', () => {
  const make = meshesClosedAfter();

  for (const callback of [true, false]) {
    const form = callback ? 'fast path (Protocol.start)' : 'promise transport';
    it(`${form}: the answer goes to deliver, once, after send returned`, async () => {
      const mesh = make({ s: { endpoints: ['a:1'] } });
      const { protocol, out } = recording(ok, callback);
      out.inSend = true;
      mesh.send('s', get(), protocol);
      out.inSend = false;
      await out.done;
      assert.deepEqual(out.delivered, [{ status: 200, endpoint: 'a:1' }]);
      assert.deepEqual(out.failed, []);
      assert.deepEqual(out.sync, []);
      assert.equal(mesh.stats().services.s.successes, 1);
    });

    it(`${form}: a failure goes to fail, once, never synchronously, with the mesh's error`, async () => {
      const mesh = make({ s: { endpoints: ['a:1', 'b:1'] } });
      const { protocol, out } = recording(refused, callback);
      out.inSend = true;
      mesh.send('s', get(), protocol);
      out.inSend = false;
      await out.done;
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(out.delivered, []);
      assert.equal(out.failed.length, 1);
      assert.match(codeOf(out.failed[0]), /^MESHLET_ERR_/);
      assert.deepEqual(out.sync, []);
      assert.equal(mesh.stats().services.s.failures, 1);
    });
  }

  it('failures decided before any attempt (unknown service, closed mesh, aborted signal, full queue) go to fail too', async () => {
    const mesh = make({ s: { endpoints: ['a:1'], circuitBreaker: { maxRequests: 1, maxPending: 0 } } });
    const cases: Array<[string, (p: Protocol<FakeReq, FakeRes>) => void]> = [
      ['MESHLET_ERR_UNKNOWN_SERVICE', (p) => mesh.send('nope', get(), p)],
      ['aborted', (p) => mesh.send('s', get(), p, AbortSignal.abort(new Error('aborted')))],
    ];
    for (const [expected, send] of cases) {
      const { protocol, out } = recording(ok, true);
      out.inSend = true;
      send(protocol);
      out.inSend = false;
      await out.done;
      const err = out.failed[0];
      assert.equal(expected === 'aborted' ? (err as Error).message : codeOf(err), expected);
      assert.deepEqual(out.sync, []);
    }

    // The one slot taken by a call that hangs: the next is refused (maxPending 0).
    const holder = recording(hang, true);
    const ac = new AbortController();
    mesh.send('s', get(), holder.protocol, ac.signal);
    const { protocol, out } = recording(ok, true);
    mesh.send('s', get(), protocol);
    await out.done;
    assert.equal(codeOf(out.failed[0]), 'MESHLET_ERR_OVERLOADED');
    ac.abort(new Error('done'));
    await holder.out.done;

    await mesh.close();
    const closed = recording(ok, true);
    closed.out.inSend = true;
    mesh.send('s', get(), closed.protocol);
    closed.out.inSend = false;
    await closed.out.done;
    assert.equal(codeOf(closed.out.failed[0]), 'MESHLET_ERR_CLOSED');
    assert.deepEqual(closed.out.sync, []);
  });

  it('a protocol without deliver and fail hooks is refused at once', () => {
    const mesh = make({ s: { endpoints: ['a:1'] } });
    assert.throws(() => mesh.send('s', get(), fakeProtocol(ok)), /needs deliver and fail hooks/);
  });

  it('a provisional answer keeps its slot and its endpoint in-flight count until reportOutcome', async () => {
    const mesh = make({ s: { endpoints: ['a:1'], circuitBreaker: { maxRequests: 1, maxPending: 0 } } });
    const seen: CallContext[] = [];
    const base = fakeProtocol(ok);
    const streaming: Protocol<FakeReq, FakeRes> = {
      ...base,
      transport: (req, ctx, ep) => {
        seen.push(ctx);
        return base.transport(req, ctx, ep);
      },
      provisional: (res) => res.status === 200,
    };
    assert.equal((await mesh.call('s', get(), streaming)).status, 200);
    const stats = (): [number, number] => {
      const s = mesh.stats().services.s;
      return [s.inFlight, s.endpoints[0].inFlight];
    };
    assert.deepEqual(stats(), [1, 1], 'answered but not ended: still in flight');
    await assert.rejects(mesh.call('s', get(), streaming), (err: unknown) => codeOf(err) === 'MESHLET_ERR_OVERLOADED');
    seen[0].reportOutcome(true);
    assert.deepEqual(stats(), [0, 0]);
    assert.equal((await mesh.call('s', get(), streaming)).status, 200);
    seen[1].reportOutcome(undefined);
    seen[1].reportOutcome(true); // at most once: ignored
    assert.deepEqual(stats(), [0, 0]);
  });
});
