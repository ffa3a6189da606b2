// Self-registration over the stream: the whole set with a revision, resolved by the server's
// reply of that revision, refused with a typed error, withdrawn, resent after a reconnect, timed
// out when the server is silent, withdrawn at close.
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MeshConfigError } from '@meshlet/core';
import { REGISTRATION_TYPE_URL, type DiscoveryRequest } from '../../src/protocol/index.js';
import { controlPlane, RegistrationError } from '../../src/index.js';
import { FakeControlServer, FakeSink, type FakeStream } from './fake-server.js';

const fast = { initialMs: 20, multiplier: 1.6, maxMs: 200, jitter: 0.2 };
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const isReg = (r: DiscoveryRequest) => r.typeUrl === REGISTRATION_TYPE_URL;
const users = { service: 'users', address: '127.0.0.1:4001', zone: 'a', metadata: { version: '2' } };

function reply(stream: FakeStream, revision: number, refused?: Array<{ name: string; reason: string }>): void {
  stream.send({
    typeUrl: REGISTRATION_TYPE_URL,
    versionInfo: String(revision),
    nonce: `r${revision}`,
    ...(refused
      ? { errorDetail: { code: 3, message: refused.map((r) => `${r.name}: ${r.reason}`).join('\n'), details: refused } }
      : {}),
  });
}

async function setup(registrationTimeoutMs = 5000) {
  const server = await new FakeControlServer().start();
  cleanups.push(() => server.stop());
  const sink = new FakeSink();
  const source = controlPlane({ address: server.address, backoff: fast, registrationTimeoutMs });
  cleanups.push(() => source.close());
  source.start(sink, { service: 'users' });
  const stream = await server.stream(0);
  return { server, sink, source, stream };
}

describe('controlPlane registrations', () => {
  it('sends the whole set with a revision and resolves on the reply of that revision; withdraw sends the set without it', async () => {
    const { source, stream } = await setup();
    const pending = source.register!(users);
    const req = await stream.next(isReg);
    assert.equal(req.registrationRevision, 1);
    assert.equal(req.registrations.length, 1);
    assert.equal(req.registrations[0].service, 'users');
    assert.equal(req.registrations[0].endpoint?.address, '127.0.0.1:4001');
    assert.equal(req.registrations[0].endpoint?.zone, 'a');
    assert.deepEqual({ ...req.registrations[0].endpoint?.metadata }, { version: '2' });
    let settled = false;
    void pending.then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(settled, false, 'waits for the server');
    reply(stream, 1);
    const handle = await pending;
    assert.deepEqual(handle.registration, users);
    assert.ok(Object.isFrozen(handle.registration));

    const other = source.register!({ service: 'users', address: '127.0.0.1:4002' });
    const req2 = await stream.next(isReg);
    assert.equal(req2.registrationRevision, 2);
    assert.deepEqual(
      req2.registrations.map((r) => r.endpoint?.address),
      ['127.0.0.1:4001', '127.0.0.1:4002'],
    );
    reply(stream, 2);
    const h2 = await other;

    const withdrawn = handle.withdraw();
    const req3 = await stream.next(isReg);
    assert.equal(req3.registrationRevision, 3);
    assert.deepEqual(
      req3.registrations.map((r) => r.endpoint?.address),
      ['127.0.0.1:4002'],
    );
    reply(stream, 3);
    await withdrawn;
    await handle.withdraw(); // idempotent: nothing sent
    await h2.withdraw().then(
      () => {},
      () => {},
    );
  });

  it('a registration the server refuses rejects with a typed error naming the reason', async () => {
    const { source, stream } = await setup();
    const pending = source.register!(users);
    await stream.next(isReg);
    reply(stream, 1, [{ name: 'users/127.0.0.1:4001', reason: 'a node may hold at most 0 registrations' }]);
    const err = await pending.then(
      () => assert.fail('should reject'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof RegistrationError);
    assert.equal(err.code, 'MESHLET_ERR_REGISTRATION');
    assert.equal(err.failure, 'refused');
    assert.match(
      err.message,
      /registration of 127\.0\.0\.1:4001 for service "users" with control plane 127\.0\.0\.1:\d+ failed: the control server refused it: a node may hold at most 0 registrations/,
    );
    // It is not announced again.
    const next = source.register!({ service: 'billing', address: '127.0.0.1:5000' });
    const req = await stream.next(isReg);
    assert.deepEqual(
      req.registrations.map((r) => r.service),
      ['billing'],
    );
    reply(stream, req.registrationRevision);
    await next;
  });

  it('a refusal naming a registration by cut-down parts (long names) still rejects it', async () => {
    const { source, stream } = await setup();
    const service = `s${'a'.repeat(240)}`;
    const pending = source.register!({ service, address: '127.0.0.1:4001' });
    const req = await stream.next(isReg);
    reply(stream, req.registrationRevision, [{ name: `${service.slice(0, 200)}/127.0.0.1:4001`, reason: 'no' }]);
    await assert.rejects(pending, (e: unknown) => e instanceof RegistrationError && e.failure === 'refused');
  });

  it('an invalid registration is refused at once with a config error', async () => {
    const { source } = await setup();
    await assert.rejects(
      source.register!({ service: 'users', address: 'no-port' }),
      (e: unknown) => e instanceof MeshConfigError && /registration\.endpoints\[0\]/.test(e.message),
    );
    await assert.rejects(source.register!({ service: 'Not A Name', address: '127.0.0.1:1' }), MeshConfigError);
  });

  it('times out with a typed error naming the address when the server never replies, and stops announcing it', async () => {
    const { source, stream, server } = await setup(80);
    const pending = source.register!(users);
    await stream.next(isReg);
    const err = await pending.then(
      () => assert.fail('should time out'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof RegistrationError);
    assert.equal(err.failure, 'timeout');
    assert.ok(err.message.includes(server.address));
    assert.match(err.message, /no reply within 80 ms/);
    const retract = await stream.next(isReg);
    assert.equal(retract.registrations.length, 0);
  });

  it('resends the set with a new revision after a reconnect; a registration made while disconnected resolves once connected', async () => {
    const { source, stream, server } = await setup();
    const p = source.register!(users);
    reply(stream, (await stream.next(isReg)).registrationRevision);
    await p;

    const port = server.port;
    server.stop();
    await new Promise((r) => setTimeout(r, 50));
    const whileDown = source.register!({ service: 'users', address: '127.0.0.1:4003' });
    const again = await new FakeControlServer().start(port);
    cleanups.push(() => again.stop());
    const s2 = await again.stream(0, 10_000);
    const resent = await s2.next(isReg);
    assert.ok(resent.registrationRevision > 1);
    assert.deepEqual(
      resent.registrations.map((r) => r.endpoint?.address),
      ['127.0.0.1:4001', '127.0.0.1:4003'],
    );
    reply(s2, resent.registrationRevision);
    const h = await whileDown;
    assert.equal(h.registration.address, '127.0.0.1:4003');
  });

  it('close() does not hang on a server that never answers the withdrawal (it waits up to 1 s), and a pending register() rejects as closed', async () => {
    const { source, stream } = await setup();
    const first = source.register!(users);
    reply(stream, (await stream.next(isReg)).registrationRevision);
    await first;
    const pending = source.register!({ service: 'users', address: '127.0.0.1:4009' });
    await stream.next(isReg);
    const closed = source.close();
    const last = await stream.next(isReg);
    assert.equal(last.registrations.length, 0, 'the withdrawal is sent');
    await closed; // no reply: resolves after its bounded wait
    await assert.rejects(pending, (e: unknown) => e instanceof RegistrationError && e.failure === 'closed');
    await stream.untilEnded();
  });

  it('close() withdraws every registration (waiting for the reply), then ends the stream; register after close rejects', async () => {
    const { source, stream } = await setup();
    const p = source.register!(users);
    reply(stream, (await stream.next(isReg)).registrationRevision);
    await p;
    const closing = source.close();
    const last = await stream.next(isReg);
    assert.equal(last.registrations.length, 0);
    reply(stream, last.registrationRevision);
    await closing;
    await stream.untilEnded();
    await assert.rejects(
      source.register!(users),
      (e: unknown) => e instanceof RegistrationError && e.failure === 'closed',
    );
    assert.match(source.describe(), /^control plane 127\.0\.0\.1:\d+: closed/);
  });
});
