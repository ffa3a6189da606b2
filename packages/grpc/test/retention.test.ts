// A finished gRPC call keeps nothing of what only a live call needs. grpc-js holds a call's
// low-level object (the listener of its endpoint stream) until that HTTP/2 stream is collected,
// some time after the call ended; under load a scavenge finds the last finished calls still alive
// and promotes everything they reach. Before the call let go of the caller's listener chain, its
// own Metadata copy and the engine's call at its final status, a unary call at concurrency 64
// promoted 9.1–9.2 KB (raw grpc-js 8.0) and meshlet ran at 0.85× raw throughput.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as grpc from '@grpc/grpc-js';
import { meshGrpcOptions } from '../src/index.js';
import { waitFor } from '../../../test/fixtures/control.ts';
import { GrpcHarness } from '../../../test/fixtures/grpc/harness.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** The low-level call a meshlet channel makes, as grpc-js's client stack drives it. */
type LowLevelCall = ReturnType<grpc.Channel['createCall']> & { metadata?: grpc.Metadata };

describe('a finished gRPC call lets go of what only a live call needs', () => {
  const h = new GrpcHarness(meshGrpcOptions);
  after(() => h.close());

  it('the caller’s listener and the call’s Metadata copy are collectable while the call object is still held', async () => {
    const s = await h.servers.start('released');
    const m = h.mesh({ services: { echo: { protocol: 'grpc', endpoints: [s.address] } } });
    const c = h.client(m, 'echo');
    // The test holds the call object, as grpc-js does after the call has ended.
    const call = c.getChannel().createCall('/meshlet.test.Echo/Unary', Infinity, 'echo', null, null) as LowLevelCall;
    let status: grpc.StatusObject | undefined;
    let message: Buffer | undefined;
    // In a function of its own, so that nothing here keeps the listener or the Metadata alive.
    const refs = ((): { listener: WeakRef<object>; copy: WeakRef<object> } => {
      const listener = {
        onReceiveMetadata(): void {},
        onReceiveMessage(msg: Buffer): void {
          message = msg;
        },
        onReceiveStatus(st: grpc.StatusObject): void {
          status = st;
        },
      };
      call.start(new grpc.Metadata(), listener);
      // An empty protobuf message: an EchoRequest with every field at its default.
      call.sendMessageWithContext({}, Buffer.alloc(0));
      call.halfClose();
      call.startRead();
      assert.ok(call.metadata instanceof grpc.Metadata, 'the call keeps its own Metadata copy while it runs');
      return { listener: new WeakRef(listener), copy: new WeakRef(call.metadata) };
    })();
    await waitFor('the call’s status', () => status !== undefined, 10_000);
    assert.equal(status!.code, grpc.status.OK, status!.details);
    assert.ok(message !== undefined, 'the answer reached the listener');
    // Collections run in turns with the event loop (weak references are cleared between them).
    for (let i = 0; i < 3; i++) {
      gc();
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(refs.listener.deref(), undefined, 'the finished call still holds the caller’s listener');
    assert.equal(refs.copy.deref(), undefined, 'the finished call still holds its Metadata copy');
    assert.equal(call.getPeer(), s.address, 'the call object itself still answers');
  });
});
