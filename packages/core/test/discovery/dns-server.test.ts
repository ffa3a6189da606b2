/**
 * DnsWatcher against a real DNS server on 127.0.0.1 (UDP, port 0) and Node's own resolver
 * (`dns.promises.Resolver` pointed at it): real packets, real TTLs, real resolver codes.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { promises as dns } from 'node:dns';
import type { AddressInfo } from 'node:net';
import dnsPacket from 'dns-packet';
import { DnsWatcher, type DnsEndpoint, type DnsTarget } from '../../src/discovery/dns.js';
import type { DnsResolutionError } from '../../src/errors.js';

type Answer = dnsPacket.Answer;
/** What the server answers for `TYPE name`: records, or an rcode. Unknown names get NXDOMAIN. */
type Zone = Map<string, Answer[] | 'SERVFAIL' | 'NXDOMAIN'>;

const RCODE = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3 } as const;

class TestDnsServer {
  readonly zone: Zone = new Map();
  readonly queries: string[] = [];
  private socket: Socket | undefined;
  port = 0;

  async listen(): Promise<void> {
    const socket = createSocket('udp4');
    this.socket = socket;
    socket.on('message', (msg, rinfo) => {
      let query: dnsPacket.Packet;
      try {
        query = dnsPacket.decode(msg);
      } catch {
        return;
      }
      const question = query.questions?.[0];
      if (question === undefined) return;
      const key = `${question.type} ${question.name}`;
      this.queries.push(key);
      const entry = this.zone.get(key) ?? (this.nameExists(question.name) ? [] : 'NXDOMAIN');
      const rcode = entry === 'SERVFAIL' ? RCODE.SERVFAIL : entry === 'NXDOMAIN' ? RCODE.NXDOMAIN : RCODE.NOERROR;
      const response = dnsPacket.encode({
        type: 'response',
        id: query.id ?? 0,
        flags: dnsPacket.AUTHORITATIVE_ANSWER | dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | rcode,
        questions: [question],
        answers: Array.isArray(entry) ? entry : [],
      });
      socket.send(response, rinfo.port, rinfo.address);
    });
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    this.port = (socket.address() as AddressInfo).port;
  }

  /** NODATA (NOERROR, no answer) for a name that has records of another type. */
  private nameExists(name: string): boolean {
    for (const key of this.zone.keys()) if (key.slice(key.indexOf(' ') + 1) === name) return true;
    return false;
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.socket ? this.socket.close(() => resolve()) : resolve()));
  }
}

const A = (name: string, ttl: number, ...ips: string[]): Answer[] =>
  ips.map((data) => ({ type: 'A', name, ttl, class: 'IN', data }));
const AAAA = (name: string, ttl: number, ...ips: string[]): Answer[] =>
  ips.map((data) => ({ type: 'AAAA', name, ttl, class: 'IN', data }));
const SRV = (
  name: string,
  ttl: number,
  ...records: Array<[target: string, port: number, priority: number, weight: number]>
): Answer[] =>
  records.map(([target, port, priority, weight]) => ({
    type: 'SRV',
    name,
    ttl,
    class: 'IN',
    data: { target, port, priority, weight },
  }));

/** Collects a watcher's reports; `next()` waits for the next one (bounded, so a broken watcher fails instead of hanging). */
class Reports {
  readonly endpoints: DnsEndpoint[][] = [];
  readonly errors: DnsResolutionError[] = [];
  private waiter: (() => void) | undefined;
  onEndpoints = (e: DnsEndpoint[]): void => {
    this.endpoints.push(e);
    this.waiter?.();
  };
  onError = (e: DnsResolutionError): void => {
    this.errors.push(e);
    this.waiter?.();
  };
  async until(what: string, done: () => boolean, boundMs = 10_000): Promise<void> {
    const deadline = Date.now() + boundMs;
    while (!done()) {
      const left = deadline - Date.now();
      if (left <= 0) assert.fail(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.waiter = undefined;
    }
  }
}

const addrs = (e: readonly DnsEndpoint[]): string[] => e.map((x) => x.address);

describe('DnsWatcher with a real DNS server', () => {
  const server = new TestDnsServer();
  const watchers: DnsWatcher[] = [];

  before(() => server.listen());
  after(async () => {
    for (const w of watchers) w.stop();
    await server.close();
  });

  function watch(target: DnsTarget, reports: Reports): DnsWatcher {
    const resolver = new dns.Resolver({ timeout: 1000, tries: 1 });
    resolver.setServers([`127.0.0.1:${server.port}`]);
    const watcher = new DnsWatcher('users', target, {
      resolver,
      onEndpoints: reports.onEndpoints,
      onError: reports.onError,
    });
    watchers.push(watcher);
    return watcher;
  }

  it('picks up a scale-up from 2 to 3 A records on its own, on the record TTL', async () => {
    server.zone.set('A users.scale.test', A('users.scale.test', 1, '10.0.0.2', '10.0.0.1'));
    const reports = new Reports();
    // refreshMs is long: only the 1 s TTL can bring the second lookup soon.
    const watcher = watch({ name: 'users.scale.test', port: 8080, type: 'A', refreshMs: 600_000 }, reports);
    watcher.start();
    await reports.until('the first set', () => reports.endpoints.length === 1);
    assert.deepEqual(reports.endpoints[0], [
      { address: '10.0.0.1:8080', weight: 1 },
      { address: '10.0.0.2:8080', weight: 1 },
    ]);

    server.zone.set('A users.scale.test', A('users.scale.test', 1, '10.0.0.1', '10.0.0.2', '10.0.0.3'));
    await reports.until('the scaled-up set', () => reports.endpoints.length === 2);
    assert.deepEqual(addrs(reports.endpoints[1]!), ['10.0.0.1:8080', '10.0.0.2:8080', '10.0.0.3:8080']);
    assert.deepEqual(addrs(watcher.endpoints), ['10.0.0.1:8080', '10.0.0.2:8080', '10.0.0.3:8080']);
    assert.equal(reports.errors.length, 0);
    watcher.stop();
  });

  it('SERVFAIL: onError with ESERVFAIL and the last good set kept; NXDOMAIN likewise; then recovery', async () => {
    // TTL 0 answers: some Node versions (c-ares ≥ 1.31 before nodejs/node#57640) cache answers for their TTL,
    // and this test flips the zone and looks up again at once.
    server.zone.set('A users.flaky.test', A('users.flaky.test', 0, '10.0.1.1', '10.0.1.2'));
    const reports = new Reports();
    const watcher = watch({ name: 'users.flaky.test', port: 80, type: 'A', refreshMs: 600_000 }, reports);
    watcher.start();
    await reports.until('the first set', () => reports.endpoints.length === 1);

    server.zone.set('A users.flaky.test', 'SERVFAIL');
    await watcher.refreshNow();
    assert.equal(reports.errors.length, 1);
    const servfail = reports.errors[0]!;
    assert.equal(servfail.code, 'MESHLET_ERR_DNS');
    assert.equal(servfail.resolverCode, 'ESERVFAIL');
    assert.equal(servfail.dnsName, 'users.flaky.test');
    assert.equal(servfail.recordType, 'A');
    assert.match(servfail.message, /keeping the last good set of 2 endpoint\(s\)/);
    assert.equal(reports.endpoints.length, 1);
    assert.deepEqual(addrs(watcher.endpoints), ['10.0.1.1:80', '10.0.1.2:80']);
    assert.equal(watcher.lastError, servfail);

    server.zone.set('A users.flaky.test', 'NXDOMAIN');
    await watcher.refreshNow();
    assert.equal(reports.errors[1]!.resolverCode, 'ENOTFOUND');
    assert.deepEqual(addrs(watcher.endpoints), ['10.0.1.1:80', '10.0.1.2:80']);

    // The failure retry (1 s) brings the set back without help.
    server.zone.set('A users.flaky.test', A('users.flaky.test', 60, '10.0.1.1', '10.0.1.3'));
    await reports.until('the recovered set', () => reports.endpoints.length === 2);
    assert.deepEqual(addrs(reports.endpoints[1]!), ['10.0.1.1:80', '10.0.1.3:80']);
    assert.equal(watcher.lastError, undefined);
    watcher.stop();
  });

  it('SRV: lowest priority group, targets resolved to A and AAAA, weights and ports from the records', async () => {
    const name = '_http._tcp.users.srv.test';
    server.zone.set(
      `SRV ${name}`,
      SRV(name, 0, ['b1.srv.test', 8001, 10, 5], ['b2.srv.test', 8002, 10, 0], ['backup.srv.test', 9000, 20, 1]),
    );
    server.zone.set('A b1.srv.test', A('b1.srv.test', 30, '10.0.2.1'));
    server.zone.set('AAAA b1.srv.test', AAAA('b1.srv.test', 30, 'fd00::1'));
    server.zone.set('A b2.srv.test', A('b2.srv.test', 30, '10.0.2.2', '10.0.2.3'));
    server.zone.set('A backup.srv.test', A('backup.srv.test', 30, '10.0.9.9'));
    const reports = new Reports();
    const watcher = watch({ name, port: undefined, type: 'SRV', refreshMs: 600_000 }, reports);
    await watcher.refreshNow();
    assert.equal(reports.errors.length, 0, reports.errors[0]?.message);
    assert.deepEqual(reports.endpoints, [
      [
        { address: '10.0.2.1:8001', weight: 5 },
        { address: '10.0.2.2:8002', weight: 1 },
        { address: '10.0.2.3:8002', weight: 1 },
        { address: '[fd00::1]:8001', weight: 5 },
      ],
    ]);
    assert.ok(server.queries.includes('AAAA b2.srv.test'), 'b2 AAAA was asked (NODATA)');
    assert.ok(!server.queries.some((q) => q.endsWith('backup.srv.test')), 'the backup group is not resolved');

    // A new target in the group: picked up on the next lookup.
    server.zone.set(`SRV ${name}`, SRV(name, 0, ['b1.srv.test', 8001, 10, 5], ['b3.srv.test', 8003, 10, 2]));
    server.zone.set('A b3.srv.test', A('b3.srv.test', 30, '10.0.2.9'));
    await watcher.refreshNow();
    assert.deepEqual(reports.endpoints[1], [
      { address: '10.0.2.1:8001', weight: 5 },
      { address: '10.0.2.9:8003', weight: 2 },
      { address: '[fd00::1]:8001', weight: 5 },
    ]);

    // An SRV name that does not exist: NXDOMAIN, an error, the set stays.

    server.zone.set(`SRV ${name}`, 'NXDOMAIN');
    await watcher.refreshNow();
    assert.equal(reports.errors[0]!.resolverCode, 'ENOTFOUND');
    assert.equal(reports.errors[0]!.recordType, 'SRV');
    assert.equal(watcher.endpoints.length, 3);
    watcher.stop();
  });

  it('AAAA records give bracketed endpoints', async () => {
    server.zone.set('AAAA users.v6.test', AAAA('users.v6.test', 30, '::1', 'fd00::2'));
    const reports = new Reports();
    const watcher = watch({ name: 'users.v6.test', port: 443, type: 'AAAA', refreshMs: 600_000 }, reports);
    await watcher.refreshNow();
    assert.deepEqual(addrs(reports.endpoints[0]!), ['[::1]:443', '[fd00::2]:443']);
    watcher.stop();
  });
});
