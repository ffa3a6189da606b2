// gRPC over TLS through the mesh, on real grpc-js TLS servers on 127.0.0.1 with a throwaway CA made
// in memory at run time (test/fixtures/grpc/tls.ts). A client built with credentials.createSsl(...) for
// meshlet:///<service> dials endpoints by IP address but verifies their certificates against the
// service name (or its own grpc.ssl_target_name_override / grpc.default_authority):
// - unary calls and server streams balanced over three TLS endpoints, :authority the service name;
// - mTLS: a server requiring a client certificate takes the client's, and a client without one
//   fails with a status saying what to pass;
// - a certificate from another CA, or naming another name, fails with UNAVAILABLE naming the
//   endpoint, the name checked and what to set; the call ends (no hang) after maxAttempts attempts;
//   grpc.ssl_target_name_override and grpc.default_authority make a certificate for another name verify;
// - insecure credentials against a TLS server (and TLS against a plaintext one) fail clearly;
// - an endpoint whose certificate names another service counts against it: its calls are retried
//   on the others, and outlier detection ejects it.
// - a call is wrapped to watch for a handshake failure only while its endpoint channel is not READY.
// And, without sockets, the rewriting of each kind of grpc-js connection failure (the ones the
// servers here cannot produce on demand: expired certificates, a refused client certificate, a
// connection closed mid-handshake), what is left alone, and the name chosen from the options.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import type { Mesh } from '@meshlet/core';
import { meshGrpcOptions } from '../src/index.js';
import { ConnectWatch, describeConnectFailure, tlsName, type ConnectInfo } from '../src/client/tls.js';
import { EndpointChannel } from '../src/client/channel.js';
import { serverStream, unary, type EchoClient } from '../../../test/fixtures/grpc/client.ts';
import { GrpcHarness, fixedRotation } from '../../../test/fixtures/grpc/harness.ts';
import { Pki, TlsEchoServer, newEchoClientWith, type KeyPair } from '../../../test/fixtures/grpc/tls.ts';

/** A test's liveness bound: a call that hangs fails the test instead of the run. */
const LIVE = { timeout: 20_000 };

describe('gRPC over TLS through the mesh', () => {
  const h = new GrpcHarness(meshGrpcOptions);
  const tlsServers: TlsEchoServer[] = [];
  let pki: Pki;
  let otherCa: Pki;
  let echoCert: KeyPair;

  before(() => {
    pki = new Pki('meshlet test CA');
    otherCa = new Pki('another CA');
    echoCert = pki.issue('echo', ['DNS:echo', 'DNS:echo.internal']);
  });

  after(async () => {
    await h.close();
    for (const s of tlsServers) s.close();
  });

  async function tlsServer(id: string, pair: KeyPair, requireClientCert = false): Promise<TlsEchoServer> {
    const s = await new TlsEchoServer(id).listen(pki.ca.cert, pair, requireClientCert);
    tlsServers.push(s);
    return s;
  }

  function client(
    mesh: Mesh,
    service: string,
    creds: grpc.ChannelCredentials,
    extra: grpc.ClientOptions = {},
  ): EchoClient {
    const c = newEchoClientWith(`meshlet:///${service}`, creds, { ...meshGrpcOptions(mesh), ...extra });
    h.clients.push(c);
    return c;
  }

  /** The failed outcome of one unary call (the assertion fails when it succeeded). */
  async function failure(c: EchoClient): Promise<grpc.ServiceError> {
    const o = await unary(c, { payload: 'x' });
    assert.ok(!o.ok, `the call succeeded on ${o.ok ? o.reply.server : ''}`);
    return o.error;
  }

  it(
    'unary calls and server streams run over TLS, balanced across three endpoints, verified against the service name',
    LIVE,
    async () => {
      const servers = await Promise.all([0, 1, 2].map((i) => tlsServer(`tls${i}`, echoCert)));
      const m = h.mesh({ services: { echo: fixedRotation(servers.map((s) => s.address)) } });
      const c = client(m, 'echo', grpc.credentials.createSsl(pki.ca.cert));

      for (let i = 0; i < 9; i++) {
        const o = await unary(c, { payload: `p${i}` });
        assert.ok(o.ok, o.ok ? '' : o.error.details);
        assert.equal(o.reply.payload, `p${i}`);
      }
      assert.deepEqual(
        servers.map((s) => s.count),
        [3, 3, 3],
      );
      for (let i = 0; i < 3; i++) {
        const s = await serverStream(c, { payload: `s${i}`, messages: 4 });
        assert.equal(s.error, undefined, s.error?.details);
        assert.deepEqual(
          s.replies.map((r) => r.seq),
          [1, 2, 3, 4],
        );
      }
      assert.deepEqual(
        servers.map((s) => s.count),
        [4, 4, 4],
      );
      for (const s of servers) for (const a of s.authorities) assert.equal(a, 'echo');
    },
  );

  it(
    'mTLS: a server that requires a client certificate takes the client’s; without one the call fails saying what to pass',
    LIVE,
    async () => {
      const s = await tlsServer('mtls', echoCert, true);
      const m = h.mesh({ services: { echo: fixedRotation([s.address], { retry: { maxAttempts: 1 } }) } });
      const id = pki.issue('frontend', [], true);
      const withCert = client(m, 'echo', grpc.credentials.createSsl(pki.ca.cert, id.key, id.cert));
      const o = await unary(withCert, { payload: 'm' });
      assert.ok(o.ok, o.ok ? '' : o.error.details);
      assert.equal(o.reply.server, 'mtls');

      const without = client(m, 'echo', grpc.credentials.createSsl(pki.ca.cert));
      const err = await failure(without);
      assert.equal(err.code, grpc.status.UNAVAILABLE);
      assert.match(err.details, new RegExp(`endpoint ${s.address} of service "echo"`));
      assert.match(
        err.details,
        /requires a client certificate \(mTLS\).*credentials\.createSsl\(rootCerts, privateKey, certChain\)/,
      );
      assert.equal(s.count, 1);
    },
  );

  it(
    'a certificate from a CA the client does not trust fails with UNAVAILABLE naming the endpoint, after maxAttempts attempts',
    LIVE,
    async () => {
      const s = await tlsServer('untrusted', echoCert);
      const m = h.mesh({ services: { echo: fixedRotation([s.address], { retry: { maxAttempts: 2 } }) } });
      const c = client(m, 'echo', grpc.credentials.createSsl(otherCa.ca.cert));
      // No deadline: the call must end by itself.
      const err = await failure(c);
      assert.equal(err.code, grpc.status.UNAVAILABLE);
      assert.match(err.details, new RegExp(`^TLS verification failed for endpoint ${s.address} of service "echo"`));
      assert.match(err.details, /not signed by a CA among the client's root certificates/);
      assert.match(err.details, /rootCerts to credentials\.createSsl/);
      assert.equal(s.count, 0);
      const ep = m.stats().services.echo.endpoints[0];
      assert.equal(ep.requests, 2, 'one attempt and one retry, no more');
      assert.equal(ep.failures, 2, 'the handshake failures count against the endpoint');
    },
  );

  it(
    'a misconfigured client: once every endpoint’s breaker is open, the no-healthy-endpoint error still says why',
    LIVE,
    async () => {
      const s = await tlsServer('untrusted-open', echoCert);
      const m = h.mesh({
        services: {
          echo: {
            protocol: 'grpc',
            endpoints: [s.address],
            retry: { maxAttempts: 1 },
            circuitBreaker: { consecutiveFailures: 1 },
            outlierDetection: { enabled: false },
          },
        },
      });
      const c = client(m, 'echo', grpc.credentials.createSsl(otherCa.ca.cert));
      assert.match((await failure(c)).details, /^TLS verification failed/);
      const err = await failure(c);
      assert.equal(err.code, grpc.status.UNAVAILABLE);
      assert.match(err.details, /^MESHLET_ERR_NO_HEALTHY_ENDPOINTS: service "echo" method Unary: no healthy endpoint/);
      assert.match(
        err.details,
        new RegExp(
          `The last failure, on ${s.address.replace(/\./g, '\\.')}: UNAVAILABLE: TLS verification failed for endpoint`,
        ),
      );
    },
  );

  it(
    'a certificate that does not name the service fails clearly; grpc.ssl_target_name_override or grpc.default_authority make it verify',
    LIVE,
    async () => {
      const wildcard = pki.issue('cluster', ['DNS:*.default.svc.cluster.local']);
      const s = await tlsServer('wildcard', wildcard);
      const m = h.mesh({ services: { echo: fixedRotation([s.address], { retry: { maxAttempts: 1 } }) } });
      const creds = grpc.credentials.createSsl(pki.ca.cert);

      const err = await failure(client(m, 'echo', creds));
      assert.equal(err.code, grpc.status.UNAVAILABLE);
      assert.match(
        err.details,
        new RegExp(
          `^TLS verification failed for endpoint ${s.address} of service "echo": its certificate does not name "echo", the name checked \\(the service name`,
        ),
      );
      assert.match(err.details, /Set the client option grpc\.ssl_target_name_override to a name the certificate has/);
      assert.match(err.details, /DNS:\*\.default\.svc\.cluster\.local/, 'the names the certificate has');

      const wrongOverride = client(m, 'echo', creds, { 'grpc.ssl_target_name_override': 'echo.example.com' });
      const err2 = await failure(wrongOverride);
      assert.match(
        err2.details,
        /does not name "echo\.example\.com", the name checked \(from grpc\.ssl_target_name_override/,
      );

      const override = client(m, 'echo', creds, { 'grpc.ssl_target_name_override': 'echo.default.svc.cluster.local' });
      const o = await unary(override, { payload: 'o' });
      assert.ok(o.ok, o.ok ? '' : o.error.details);
      assert.equal(s.authorities.at(-1), 'echo', 'the override names the certificate, not the call');

      const authority = client(m, 'echo', creds, { 'grpc.default_authority': 'echo.default.svc.cluster.local:443' });
      const a = await unary(authority, { payload: 'a' });
      assert.ok(a.ok, a.ok ? '' : a.error.details);
      assert.equal(s.authorities.at(-1), 'echo.default.svc.cluster.local:443');
    },
  );

  it(
    'insecure credentials against a TLS server, and TLS against a plaintext one, fail saying which credentials to use',
    LIVE,
    async () => {
      const s = await tlsServer('tls-only', echoCert);
      const plain = await h.servers.start('plain');
      const m = h.mesh({
        services: {
          echo: fixedRotation([s.address], { retry: { maxAttempts: 1 } }),
          plain: fixedRotation([plain.address], { retry: { maxAttempts: 1 } }),
        },
      });
      const err = await failure(client(m, 'echo', grpc.credentials.createInsecure()));
      assert.equal(err.code, grpc.status.UNAVAILABLE);
      assert.match(
        err.details,
        new RegExp(`endpoint ${s.address} of service "echo" closed by the endpoint before HTTP/2 began`),
      );
      assert.match(err.details, /build the client with credentials\.createSsl/);

      const err2 = await failure(client(m, 'plain', grpc.credentials.createSsl(pki.ca.cert)));
      assert.equal(err2.code, grpc.status.UNAVAILABLE);
      assert.match(
        err2.details,
        new RegExp(`endpoint ${plain.address} of service "plain" failed: the endpoint does not answer TLS`),
      );
      assert.match(err2.details, /credentials\.createInsecure\(\)/);
      assert.equal(plain.count, 0);
    },
  );

  it(
    'a call on an endpoint channel is watched only while the channel is not READY (none once connected)',
    LIVE,
    async () => {
      const s = await tlsServer('ready', echoCert);
      const info: ConnectInfo = {
        service: 'echo',
        address: s.address,
        tls: { name: 'echo', source: 'the service name' },
      };
      const ch = new EndpointChannel(
        `ipv4:${s.address}`,
        grpc.credentials.createSsl(pki.ca.cert),
        { 'grpc.ssl_target_name_override': 'echo' },
        info,
      );
      try {
        const method = '/meshlet.test.Echo/Unary';
        const before = ch.createCall(method, Infinity, 'echo', null, null);
        assert.ok(before instanceof ConnectWatch, 'a call on an IDLE channel is not watched');
        before.cancelWithStatus(grpc.status.CANCELLED, 'test');
        ch.getConnectivityState(true);
        await new Promise<void>((resolve, reject) => {
          const wait = (): void => {
            const state = ch.getConnectivityState(false);
            if (state === grpc.connectivityState.READY) return resolve();
            ch.watchConnectivityState(state, Date.now() + 10_000, (err) => (err ? reject(err) : wait()));
          };
          wait();
        });
        const after = ch.createCall(method, Infinity, 'echo', null, null);
        assert.ok(!(after instanceof ConnectWatch), 'a call on a READY channel was wrapped');
        after.cancelWithStatus(grpc.status.CANCELLED, 'test');
      } finally {
        ch.close();
      }
    },
  );

  it(
    'an endpoint whose certificate names another service counts against it: calls are retried on the others and it is ejected',
    LIVE,
    async () => {
      const good = await Promise.all([0, 1].map((i) => tlsServer(`good${i}`, echoCert)));
      const impostor = await tlsServer('impostor', pki.issue('billing', ['DNS:billing']));
      const m = h.mesh({
        services: {
          echo: fixedRotation([good[0].address, impostor.address, good[1].address], {
            outlierDetection: { enabled: true, consecutiveFailures: 2 },
          }),
        },
      });
      const c = client(m, 'echo', grpc.credentials.createSsl(pki.ca.cert));
      for (let i = 0; i < 12; i++) {
        const o = await unary(c, { payload: `r${i}` });
        assert.ok(o.ok, o.ok ? '' : o.error.details);
        assert.notEqual(o.reply.server, 'impostor');
      }
      assert.equal(impostor.count, 0);
      assert.equal(good[0].count + good[1].count, 12);
      const ep = m.stats().services.echo.endpoints.find((e) => e.address === impostor.address)!;
      assert.ok(ep.failures >= 2, `the impostor's handshake failures were not counted (${ep.failures})`);
      assert.ok(ep.ejections >= 1, 'the impostor was not ejected');
    },
  );
});

describe('TLS connection failures: the details a caller gets', () => {
  const tls: ConnectInfo = {
    service: 'echo',
    address: '10.0.0.7:50051',
    tls: { name: 'echo', source: 'the service name' },
  };
  const plain: ConnectInfo = { service: 'echo', address: '10.0.0.7:50051', tls: undefined };
  const grpcJs = (last: string): string => `No connection established. Last error: ${last}. Resolution note: `;

  it('each kind of handshake failure names the endpoint and says what to do; grpc-js’s words stay at the end', () => {
    const cases: [ConnectInfo, string, RegExp][] = [
      [
        tls,
        'Error: certificate has expired',
        /^TLS verification failed for endpoint 10\.0\.0\.7:50051 of service "echo": .*renew the certificate/,
      ],
      [
        tls,
        'Error: self-signed certificate in certificate chain',
        /not signed by a CA among the client's root certificates/,
      ],
      [tls, 'Error: unable to get local issuer certificate', /rootCerts to credentials\.createSsl/],
      [
        tls,
        'Error: 40:error:0A000418:SSL routines:ssl3_read_bytes:tlsv1 alert unknown ca:SSL alert number 48',
        /refused the client certificate/,
      ],
      [
        tls,
        'Error: Client network socket disconnected before secure TLS connection was established',
        /closed the connection during the handshake.*createInsecure/,
      ],
      [tls, 'Error: 40:error:0A00010B:SSL routines:ssl3_get_record:wrong version number', /does not answer TLS/],
      [plain, 'read ECONNRESET (2026-01-01T00:00:00.000Z)', /before HTTP\/2 began.*createSsl/],
      [
        tls,
        'read ECONNRESET (2026-01-01T00:00:00.000Z)',
        /right after the TLS handshake.*may have refused the client certificate/,
      ],
      [
        tls,
        'Failed to connect (2026-01-01T00:00:00.000Z)',
        /right after the TLS handshake.*may have refused the client certificate/,
      ],
    ];
    for (const [info, last, want] of cases) {
      const d = describeConnectFailure(grpcJs(last), info);
      assert.ok(d !== undefined, `not recognised: ${last}`);
      assert.match(d, want);
      assert.ok(d.endsWith(`(grpc-js: ${last})`), d);
    }
  });

  it('a failure that is not TLS is left as grpc-js wrote it', () => {
    for (const info of [tls, plain]) {
      assert.equal(describeConnectFailure(grpcJs('connect ECONNREFUSED 10.0.0.7:50051'), info), undefined);
      assert.equal(describeConnectFailure('test server b fails the call with UNAVAILABLE', info), undefined);
    }
    assert.equal(describeConnectFailure(grpcJs('Error: certificate has expired'), plain), undefined);
  });

  it('the name checked: the override, else the host of the default authority, else the service', () => {
    assert.deepEqual(tlsName('echo', {}), { name: 'echo', source: 'the service name' });
    assert.deepEqual(tlsName('echo', { 'grpc.default_authority': 'echo.internal:8443' }), {
      name: 'echo.internal',
      source: 'grpc.default_authority',
    });
    assert.deepEqual(tlsName('echo', { 'grpc.default_authority': '[::1]:8443' }), {
      name: '::1',
      source: 'grpc.default_authority',
    });
    assert.deepEqual(tlsName('echo', { 'grpc.default_authority': 'a.b', 'grpc.ssl_target_name_override': 'x.y' }), {
      name: 'x.y',
      source: 'grpc.ssl_target_name_override',
    });
  });
});
