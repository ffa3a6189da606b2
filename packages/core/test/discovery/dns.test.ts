import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  DnsWatcher,
  type DnsEndpoint,
  type DnsResolverLike,
  type DnsTarget,
  type DnsTimer,
} from '../../src/discovery/dns.js';
import { DnsResolutionError, MeshConfigError, MeshError } from '../../src/errors.js';

type Records = Array<{ address: string; ttl: number }>;
type SrvRecords = Array<{ name: string; port: number; priority: number; weight: number }>;
/** An answer: records, an error code to fail with, or a pending promise the test settles. */
type Reply<T> = T | { fail: string } | Promise<T>;

function dnsError(code: string, syscall: string, name: string): Error {
  return Object.assign(new Error(`${syscall} ${code} ${name}`), { code, syscall, hostname: name });
}

/** A resolver whose answers the test sets per record type and name; counts the queries. */
class FakeResolver implements DnsResolverLike {
  readonly answers = new Map<string, Reply<Records | SrvRecords>>();
  readonly queries: string[] = [];

  set(type: 'A' | 'AAAA' | 'SRV', name: string, reply: Reply<Records | SrvRecords>): void {
    this.answers.set(`${type} ${name}`, reply);
  }

  private answer<T>(type: string, name: string): Promise<T> {
    this.queries.push(`${type} ${name}`);
    const reply = this.answers.get(`${type} ${name}`);
    if (reply === undefined) return Promise.reject(dnsError('ENOTFOUND', `query${type}`, name));
    if (reply instanceof Promise) return reply as Promise<T>;
    if ('fail' in reply) return Promise.reject(dnsError(reply.fail, `query${type}`, name));
    return Promise.resolve(structuredClone(reply) as T);
  }

  resolve4(name: string, options: { ttl: true }): Promise<Records> {
    assert.deepEqual(options, { ttl: true });
    return this.answer('A', name);
  }
  resolve6(name: string, options: { ttl: true }): Promise<Records> {
    assert.deepEqual(options, { ttl: true });
    return this.answer('AAAA', name);
  }
  resolveSrv(name: string): Promise<SrvRecords> {
    return this.answer('SRV', name);
  }
}

interface FakeTimer extends DnsTimer {
  fn: () => void;
  at: number;
  ms: number;
  cleared: boolean;
  unrefed: boolean;
}

/** A fake clock and timer list: `advance(ms)` moves time, fires due timers and lets lookups settle. */
class FakeTime {
  now = 0;
  readonly timers: FakeTimer[] = [];
  readonly clock = { now: () => this.now };
  readonly setTimer = (fn: () => void, ms: number): FakeTimer => {
    const t: FakeTimer = {
      fn,
      ms,
      at: this.now + ms,
      cleared: false,
      unrefed: false,
      unref() {
        t.unrefed = true;
      },
    };
    this.timers.push(t);
    return t;
  };
  readonly clearTimer = (t: DnsTimer): void => {
    (t as FakeTimer).cleared = true;
  };
  /** Timers armed and neither fired nor cleared. */
  pending(): FakeTimer[] {
    return this.timers.filter((t) => !t.cleared && t.at >= 0);
  }
  async advance(ms: number): Promise<void> {
    const until = this.now + ms;
    for (;;) {
      const next = this.pending()
        .filter((t) => t.at <= until)
        .sort((a, b) => a.at - b.at)[0];
      if (next === undefined) break;
      this.now = Math.max(this.now, next.at);
      next.cleared = true; // fired
      next.fn();
      await settle();
    }
    this.now = until;
    await settle();
  }
}

/** Lets resolved promises run their continuations. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function deferred<T>(): { promise: Promise<T>; resolve(v: T): void; reject(e: unknown): void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const a = (ttl: number, ...ips: string[]): Records => ips.map((address) => ({ address, ttl }));

function setup(target: Partial<DnsTarget> = {}) {
  const resolver = new FakeResolver();
  const time = new FakeTime();
  const reported: DnsEndpoint[][] = [];
  const errors: DnsResolutionError[] = [];
  const watcher = new DnsWatcher(
    'users',
    { name: 'users.test', port: 8080, type: 'A', refreshMs: 30_000, ...target },
    {
      resolver,
      clock: time.clock,
      setTimer: time.setTimer,
      clearTimer: time.clearTimer,
      onEndpoints: (e) => reported.push(e),
      onError: (e) => errors.push(e),
    },
  );
  return { resolver, time, reported, errors, watcher };
}

const addrs = (endpoints: readonly DnsEndpoint[]): string[] => endpoints.map((e) => e.address);

describe('DnsWatcher: schedule', () => {
  it('resolves at start, then every refreshMs; reports only when the set changes', async () => {
    const { resolver, time, reported, watcher } = setup();
    resolver.set('A', 'users.test', a(3600, '10.0.0.2', '10.0.0.1'));
    watcher.start();
    await settle();
    assert.deepEqual(resolver.queries, ['A users.test']);
    assert.deepEqual(reported, [
      [
        { address: '10.0.0.1:8080', weight: 1 },
        { address: '10.0.0.2:8080', weight: 1 },
      ],
    ]);
    assert.deepEqual(
      time.pending().map((t) => t.ms),
      [30_000],
    );

    await time.advance(29_999);
    assert.equal(resolver.queries.length, 1, 'no lookup before refreshMs');
    await time.advance(1);
    assert.equal(resolver.queries.length, 2);
    assert.equal(reported.length, 1, 'same set: not reported again');

    resolver.set('A', 'users.test', a(3600, '10.0.0.3', '10.0.0.1', '10.0.0.2'));
    await time.advance(30_000);
    assert.equal(resolver.queries.length, 3);
    assert.deepEqual(addrs(reported[1]!), ['10.0.0.1:8080', '10.0.0.2:8080', '10.0.0.3:8080']);
    assert.deepEqual(addrs(watcher.endpoints), ['10.0.0.1:8080', '10.0.0.2:8080', '10.0.0.3:8080']);
    watcher.stop();
  });

  it('refreshes sooner when the smallest TTL is shorter than refreshMs', async () => {
    const { resolver, time, watcher } = setup();
    resolver.set('A', 'users.test', [
      { address: '10.0.0.1', ttl: 20 },
      { address: '10.0.0.2', ttl: 5 },
    ]);
    watcher.start();
    await settle();
    assert.deepEqual(
      time.pending().map((t) => t.ms),
      [5_000],
    );
    await time.advance(5_000);
    assert.equal(resolver.queries.length, 2);
    // A TTL longer than refreshMs does not stretch the interval.
    resolver.set('A', 'users.test', a(86_400, '10.0.0.1'));
    await time.advance(5_000);
    assert.deepEqual(
      time.pending().map((t) => t.ms),
      [30_000],
    );
    watcher.stop();
  });

  it('never looks up more than once per second: TTL 0 and sub-second TTLs floor at 1 s from the previous start', async () => {
    const { resolver, time, watcher } = setup();
    resolver.set('A', 'users.test', a(0, '10.0.0.1'));
    watcher.start();
    await settle();
    assert.deepEqual(
      time.pending().map((t) => t.ms),
      [1_000],
    );
    // A lookup that takes 300 ms: the next one still starts 1 s after this one started.
    const slow = deferred<Records>();
    resolver.set('A', 'users.test', slow.promise);
    await time.advance(1_000);
    assert.equal(resolver.queries.length, 2);
    time.now += 300;
    slow.resolve(a(0, '10.0.0.1'));
    await settle();
    assert.deepEqual(
      time.pending().map((t) => t.ms),
      [700],
    );
    resolver.set('A', 'users.test', a(0, '10.0.0.1'));
    await time.advance(10_000);
    assert.equal(resolver.queries.length, 12, 'one lookup per second over 10 s');
    watcher.stop();
  });

  it('arms only unref-ed timers, so a watcher never keeps the process alive', async () => {
    const { resolver, time, watcher } = setup();
    resolver.set('A', 'users.test', a(5, '10.0.0.1'));
    watcher.start();
    await time.advance(60_000);
    resolver.set('A', 'users.test', { fail: 'ETIMEOUT' });
    await time.advance(60_000);
    assert.ok(time.timers.length > 5, `${time.timers.length} timers armed`);
    assert.ok(
      time.timers.every((t) => t.unrefed),
      'every timer unref-ed',
    );
    watcher.stop();
  });

  it('the default timers are unref-ed (real setTimeout)', async () => {
    const resolver = new FakeResolver();
    resolver.set('A', 'users.test', a(3600, '10.0.0.1'));
    let armed: ReturnType<typeof setTimeout> | undefined;
    const done = deferred<void>();
    const watcher = new DnsWatcher(
      'users',
      { name: 'users.test', port: 80, type: 'A', refreshMs: 60_000 },
      { resolver, onEndpoints: () => done.resolve(), onError: () => {} },
    );
    try {
      watcher.start();
      await done.promise;
      await settle();
      // The watcher's only handle is its timer: read it through the private field.
      armed = (watcher as unknown as { timer: ReturnType<typeof setTimeout> }).timer;
      assert.ok(armed !== undefined, 'a timer is armed');
      assert.equal(armed.hasRef(), false);
    } finally {
      watcher.stop();
    }
  });

  it('never overlaps lookups: refreshNow during a lookup returns that lookup', async () => {
    const { resolver, time, reported, watcher } = setup();
    const pending = deferred<Records>();
    resolver.set('A', 'users.test', pending.promise);
    watcher.start();
    const first = watcher.refreshNow();
    const second = watcher.refreshNow();
    assert.equal(first, second);
    assert.equal(resolver.queries.length, 1);
    pending.resolve(a(60, '10.0.0.1'));
    await first;
    assert.equal(reported.length, 1);
    assert.equal(time.pending().length, 1, 'one timer armed');
    // refreshNow between lookups: looks up at once and re-arms from it (the old timer is cleared).
    resolver.set('A', 'users.test', a(60, '10.0.0.1', '10.0.0.9'));
    time.now += 10_000;
    const oldTimer = time.pending()[0]!;
    await watcher.refreshNow();
    assert.equal(oldTimer.cleared, true);
    assert.equal(resolver.queries.length, 2);
    assert.deepEqual(addrs(reported[1]!), ['10.0.0.1:8080', '10.0.0.9:8080']);
    assert.deepEqual(
      time.pending().map((t) => t.at),
      [10_000 + 30_000],
    );
    watcher.stop();
  });

  it('refreshNow before start looks up once and arms no timer', async () => {
    const { resolver, time, reported, watcher } = setup();
    resolver.set('A', 'users.test', a(5, '10.0.0.1'));
    await watcher.refreshNow();
    assert.deepEqual(addrs(reported[0]!), ['10.0.0.1:8080']);
    assert.equal(time.pending().length, 0);
  });
});

describe('DnsWatcher: failures keep the last good set', () => {
  for (const [what, reply] of [
    ['SERVFAIL', { fail: 'ESERVFAIL' }],
    ['a timeout', { fail: 'ETIMEOUT' }],
    ['NXDOMAIN', { fail: 'ENOTFOUND' }],
    ['NODATA', { fail: 'ENODATA' }],
    ['an empty answer', []],
  ] as const) {
    it(`on ${what}: onError, the set is kept, onEndpoints is not called`, async () => {
      const { resolver, time, reported, errors, watcher } = setup();
      resolver.set('A', 'users.test', a(3600, '10.0.0.1', '10.0.0.2'));
      watcher.start();
      await settle();
      assert.equal(reported.length, 1);

      resolver.set('A', 'users.test', reply as Reply<Records>);
      await time.advance(30_000);
      assert.equal(errors.length, 1);
      assert.ok(errors[0] instanceof DnsResolutionError, 'a DnsResolutionError');
      assert.equal(reported.length, 1, 'onEndpoints not called');
      assert.deepEqual(addrs(watcher.endpoints), ['10.0.0.1:8080', '10.0.0.2:8080']);
      assert.equal(watcher.lastError, errors[0]);
      assert.equal(errors[0].kept, 2);

      // Recovery with the same set: the error clears, nothing is re-reported.
      resolver.set('A', 'users.test', a(3600, '10.0.0.1', '10.0.0.2'));
      await time.advance(1_000);
      assert.equal(watcher.lastError, undefined);
      assert.equal(reported.length, 1);
      watcher.stop();
    });
  }

  it('retries a failed lookup after 1 s, 2 s, 4 s, … capped at refreshMs, and back to the normal interval after a success', async () => {
    const { resolver, time, errors, reported, watcher } = setup({ refreshMs: 10_000 });
    resolver.set('A', 'users.test', { fail: 'ETIMEOUT' });
    watcher.start();
    await settle();
    const delays = [time.pending()[0]!.ms];
    for (let i = 0; i < 5; i++) {
      await time.advance(delays[delays.length - 1]!);
      delays.push(time.pending()[0]!.ms);
    }
    assert.deepEqual(delays, [1_000, 2_000, 4_000, 8_000, 10_000, 10_000]);
    assert.equal(errors.length, 6);
    assert.equal(reported.length, 0, 'no set before the first success');
    assert.deepEqual(watcher.endpoints, []);
    assert.equal(errors[0]!.kept, 0);
    assert.match(errors[0]!.message, /no endpoints until a lookup succeeds/);

    resolver.set('A', 'users.test', a(3600, '10.0.0.1'));
    await time.advance(10_000);
    assert.equal(reported.length, 1, 'the first success is reported');
    assert.deepEqual(
      time.pending().map((t) => t.ms),
      [10_000],
    );
    resolver.set('A', 'users.test', { fail: 'ETIMEOUT' });
    await time.advance(10_000);
    assert.deepEqual(
      time.pending().map((t) => t.ms),
      [1_000],
      'the backoff restarts at 1 s',
    );
    watcher.stop();
  });

  it('error shape: typed, coded, names service, DNS name, record type and resolver code, and says what to do', async () => {
    const { resolver, time, errors, watcher } = setup({ name: 'users.svc.example', type: 'AAAA' });
    resolver.set('AAAA', 'users.svc.example', a(60, '::1'));
    watcher.start();
    await settle();
    resolver.set('AAAA', 'users.svc.example', { fail: 'ESERVFAIL' });
    await time.advance(30_000);
    resolver.set('AAAA', 'users.svc.example', { fail: 'ENOTFOUND' });
    await time.advance(1_000);
    const [servfail, nxdomain] = errors;
    assert.ok(servfail instanceof MeshError, 'a MeshError');
    assert.equal(servfail.code, 'MESHLET_ERR_DNS');
    assert.equal(servfail.name, 'DnsResolutionError');
    assert.equal(servfail.service, 'users');
    assert.equal(servfail.dnsName, 'users.svc.example');
    assert.equal(servfail.recordType, 'AAAA');
    assert.equal(servfail.resolverCode, 'ESERVFAIL');
    assert.equal((servfail.cause as { code?: string }).code, 'ESERVFAIL');
    assert.equal(
      servfail.message,
      'service "users": DNS AAAA lookup of "users.svc.example" failed (ESERVFAIL: the DNS server failed to answer (SERVFAIL)); ' +
        'keeping the last good set of 1 endpoint(s); retried automatically; ' +
        'check that the DNS server in /etc/resolv.conf is up and answers for users.svc.example',
    );
    assert.equal(nxdomain!.resolverCode, 'ENOTFOUND');
    assert.match(nxdomain!.message, /no such name \(NXDOMAIN\)/);
    assert.match(nxdomain!.message, /check services\["users"\]\.dns\.name and \.type/);
    watcher.stop();
  });

  it('an error without a resolver code is reported as EUNKNOWN with its message', async () => {
    const { resolver, errors, watcher } = setup();
    resolver.set('A', 'users.test', Promise.reject(new Error('socket exploded')));
    watcher.start();
    await settle();
    assert.equal(errors[0]!.resolverCode, 'EUNKNOWN');
    assert.match(errors[0]!.message, /failed \(EUNKNOWN: socket exploded\)/);
    watcher.stop();
  });
});

describe('DnsWatcher: addresses', () => {
  it('A: dedupes repeated addresses and sorts', async () => {
    const { resolver, reported, watcher } = setup({ port: 9000 });
    resolver.set('A', 'users.test', a(60, '10.0.0.3', '10.0.0.1', '10.0.0.3'));
    await watcher.refreshNow();
    assert.deepEqual(reported, [
      [
        { address: '10.0.0.1:9000', weight: 1 },
        { address: '10.0.0.3:9000', weight: 1 },
      ],
    ]);
  });

  it('AAAA: IPv6 addresses in brackets', async () => {
    const { resolver, reported, watcher } = setup({ type: 'AAAA', port: 443 });
    resolver.set('AAAA', 'users.test', a(60, 'fd00::2', '::1'));
    await watcher.refreshNow();
    assert.deepEqual(addrs(reported[0]!), ['[::1]:443', '[fd00::2]:443']);
    assert.deepEqual(resolver.queries, ['AAAA users.test']);
  });

  it('a weight change is a change too (SRV)', async () => {
    const { resolver, time, reported, watcher } = setup({ type: 'SRV', port: undefined, name: '_h._tcp.users.test' });
    resolver.set('SRV', '_h._tcp.users.test', [{ name: 'b1.test', port: 80, priority: 0, weight: 10 }]);
    resolver.set('A', 'b1.test', a(3600, '10.0.0.1'));
    resolver.set('AAAA', 'b1.test', { fail: 'ENODATA' });
    watcher.start();
    await settle();
    resolver.set('SRV', '_h._tcp.users.test', [{ name: 'b1.test', port: 80, priority: 0, weight: 20 }]);
    await time.advance(30_000);
    assert.deepEqual(reported, [[{ address: '10.0.0.1:80', weight: 10 }], [{ address: '10.0.0.1:80', weight: 20 }]]);
    watcher.stop();
  });
});

describe('DnsWatcher: SRV', () => {
  const NAME = '_http._tcp.users.test';

  it('uses the lowest priority group only, resolves targets to A and AAAA, weights from SRV (0 → 1)', async () => {
    const { resolver, reported, watcher } = setup({ type: 'SRV', port: undefined, name: NAME });
    resolver.set('SRV', NAME, [
      { name: 'backup.test', port: 9999, priority: 20, weight: 100 },
      { name: 'b1.test', port: 8001, priority: 10, weight: 30 },
      { name: 'b2.test', port: 8002, priority: 10, weight: 0 },
    ]);
    resolver.set('A', 'b1.test', a(60, '10.0.0.1'));
    resolver.set('AAAA', 'b1.test', a(60, 'fd00::1'));
    resolver.set('A', 'b2.test', a(60, '10.0.0.2'));
    resolver.set('AAAA', 'b2.test', { fail: 'ENODATA' });
    resolver.set('A', 'backup.test', a(60, '10.9.9.9'));
    await watcher.refreshNow();
    assert.deepEqual(reported, [
      [
        { address: '10.0.0.1:8001', weight: 30 },
        { address: '10.0.0.2:8002', weight: 1 },
        { address: '[fd00::1]:8001', weight: 30 },
      ],
    ]);
    assert.ok(!resolver.queries.includes('A backup.test'), 'the higher priority group is not resolved');
  });

  it('sums the weights of records reaching one address, resolves each target once, and takes IP-literal targets as they are', async () => {
    const { resolver, reported, watcher } = setup({ type: 'SRV', port: undefined, name: NAME });
    resolver.set('SRV', NAME, [
      { name: 'b1.test', port: 80, priority: 0, weight: 5 },
      { name: 'b1.test', port: 80, priority: 0, weight: 7 },
      { name: 'b1.test', port: 81, priority: 0, weight: 1 },
      { name: '10.1.1.1', port: 80, priority: 0, weight: 2 },
    ]);
    resolver.set('A', 'b1.test', a(60, '10.0.0.1'));
    resolver.set('AAAA', 'b1.test', { fail: 'ENODATA' });
    await watcher.refreshNow();
    assert.deepEqual(reported, [
      [
        { address: '10.0.0.1:80', weight: 12 },
        { address: '10.0.0.1:81', weight: 1 },
        { address: '10.1.1.1:80', weight: 2 },
      ],
    ]);
    assert.equal(resolver.queries.filter((q) => q === 'A b1.test').length, 1);
  });

  it('skips records with target "." and targets with no address; fails on SERVFAIL of a target', async () => {
    const { resolver, time, reported, errors, watcher } = setup({ type: 'SRV', port: undefined, name: NAME });
    resolver.set('SRV', NAME, [
      { name: '.', port: 0, priority: 0, weight: 0 },
      { name: 'gone.test', port: 80, priority: 1, weight: 1 },
      { name: 'b1.test', port: 80, priority: 1, weight: 1 },
    ]);
    resolver.set('A', 'b1.test', a(60, '10.0.0.1'));
    resolver.set('AAAA', 'b1.test', { fail: 'ENODATA' });
    watcher.start();
    await settle();
    assert.deepEqual(addrs(reported[0]!), ['10.0.0.1:80']);
    assert.equal(errors.length, 0);

    // One target's resolver fails: the whole lookup fails and the set stays.
    resolver.set('A', 'gone.test', { fail: 'ESERVFAIL' });
    resolver.set('AAAA', 'gone.test', { fail: 'ESERVFAIL' });
    await time.advance(30_000);
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.resolverCode, 'ESERVFAIL');
    assert.equal(errors[0]!.recordType, 'SRV');
    assert.match(errors[0]!.message, /resolving SRV target "gone\.test"/);
    assert.equal(reported.length, 1);
    watcher.stop();
  });

  it('one address family answering is enough (a server that drops AAAA queries)', async () => {
    const { resolver, reported, errors, watcher } = setup({ type: 'SRV', port: undefined, name: NAME });
    resolver.set('SRV', NAME, [{ name: 'b1.test', port: 80, priority: 0, weight: 1 }]);
    resolver.set('A', 'b1.test', a(60, '10.0.0.1'));
    resolver.set('AAAA', 'b1.test', { fail: 'ETIMEOUT' });
    await watcher.refreshNow();
    assert.deepEqual(addrs(reported[0]!), ['10.0.0.1:80']);
    assert.equal(errors.length, 0);
  });

  it('no usable record, or no target with an address, is an error that keeps the last good set', async () => {
    const { resolver, time, reported, errors, watcher } = setup({ type: 'SRV', port: undefined, name: NAME });
    resolver.set('SRV', NAME, [{ name: 'b1.test', port: 80, priority: 0, weight: 1 }]);
    resolver.set('A', 'b1.test', a(60, '10.0.0.1'));
    watcher.start();
    await settle();
    assert.equal(reported.length, 1);

    resolver.set('A', 'b1.test', { fail: 'ENOTFOUND' });
    await time.advance(30_000);
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.message, /none of the SRV targets \(b1\.test\) has an A or AAAA record/);

    resolver.set('SRV', NAME, [{ name: '.', port: 0, priority: 0, weight: 0 }]);
    await time.advance(1_000);
    assert.equal(errors.length, 2);
    assert.equal(errors[1]!.resolverCode, 'ENODATA');
    assert.match(errors[1]!.message, /no SRV record with a usable target/);

    resolver.set('SRV', NAME, []);
    await time.advance(2_000);
    assert.equal(errors.length, 3);
    assert.match(errors[2]!.message, /no SRV records/);

    assert.equal(reported.length, 1);
    assert.deepEqual(addrs(watcher.endpoints), ['10.0.0.1:80']);
    watcher.stop();
  });

  it('refreshes on the smallest TTL of the targets (SRV answers carry none in Node)', async () => {
    const { resolver, time, watcher } = setup({ type: 'SRV', port: undefined, name: NAME });
    resolver.set('SRV', NAME, [
      { name: 'b1.test', port: 80, priority: 0, weight: 1 },
      { name: 'b2.test', port: 80, priority: 0, weight: 1 },
    ]);
    resolver.set('A', 'b1.test', a(60, '10.0.0.1'));
    resolver.set('A', 'b2.test', a(7, '10.0.0.2'));
    watcher.start();
    await settle();
    assert.deepEqual(
      time.pending().map((t) => t.ms),
      [7_000],
    );
    watcher.stop();
  });
});

describe('DnsWatcher: stop', () => {
  it('stop during a lookup drops its result and arms nothing', async () => {
    const { resolver, time, reported, errors, watcher } = setup();
    const pending = deferred<Records>();
    resolver.set('A', 'users.test', pending.promise);
    watcher.start();
    const inFlight = watcher.refreshNow();
    watcher.stop();
    pending.resolve(a(60, '10.0.0.1'));
    await inFlight;
    await settle();
    assert.equal(reported.length, 0);
    assert.equal(errors.length, 0);
    assert.deepEqual(watcher.endpoints, []);
    assert.equal(time.pending().length, 0);
  });

  it('stop during a failing lookup reports no error', async () => {
    const { resolver, time, errors, watcher } = setup();
    const pending = deferred<Records>();
    resolver.set('A', 'users.test', pending.promise);
    watcher.start();
    watcher.stop();
    pending.reject(dnsError('ECANCELLED', 'queryA', 'users.test'));
    await settle();
    assert.equal(errors.length, 0);
    assert.equal(time.pending().length, 0);
  });

  it('stop clears the armed timer; refreshNow after stop does nothing; start resumes', async () => {
    const { resolver, time, reported, watcher } = setup();
    resolver.set('A', 'users.test', a(60, '10.0.0.1'));
    watcher.start();
    await settle();
    const armed = time.pending()[0]!;
    watcher.stop();
    assert.equal(armed.cleared, true);
    await time.advance(120_000);
    await watcher.refreshNow();
    assert.equal(resolver.queries.length, 1);

    resolver.set('A', 'users.test', a(60, '10.0.0.2'));
    watcher.start();
    await settle();
    assert.equal(resolver.queries.length, 2);
    assert.deepEqual(addrs(reported[1]!), ['10.0.0.2:8080']);
    assert.equal(time.pending().length, 1);
    watcher.stop();
  });

  it('the default resolver is cancelled by stop (no query outlives the watcher)', async () => {
    const watcher = new DnsWatcher(
      'users',
      { name: 'users.invalid', port: 80, type: 'A', refreshMs: 60_000 },
      { onEndpoints: () => {}, onError: () => {} },
    );
    const own = (watcher as unknown as { ownResolver: { cancel(): void } }).ownResolver;
    let cancelled = 0;
    const cancel = own.cancel.bind(own);
    own.cancel = () => {
      cancelled++;
      cancel();
    };
    watcher.stop();
    assert.equal(cancelled, 1);
  });
});

describe('DnsWatcher: callbacks and config', () => {
  it('an onEndpoints that throws does not stop the watcher, and the set is offered again', async () => {
    const resolver = new FakeResolver();
    const time = new FakeTime();
    resolver.set('A', 'users.test', a(60, '10.0.0.1'));
    const seen: string[][] = [];
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      const watcher = new DnsWatcher(
        'users',
        { name: 'users.test', port: 80, type: 'A', refreshMs: 30_000 },
        {
          resolver,
          clock: time.clock,
          setTimer: time.setTimer,
          clearTimer: time.clearTimer,
          onEndpoints: (e) => {
            seen.push(addrs(e));
            if (seen.length === 1) throw new Error('sink refused');
          },
          onError: () => {},
        },
      );
      watcher.start();
      await settle();
      await time.advance(30_000);
      assert.deepEqual(seen, [['10.0.0.1:80'], ['10.0.0.1:80']]);
      await time.advance(30_000);
      assert.equal(seen.length, 2, 'delivered once it was accepted');
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!, /DNS watcher of service "users": onEndpoints threw: sink refused/);
      watcher.stop();
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('refuses a target the config could not have produced, naming the path', () => {
    const options = { onEndpoints: () => {}, onError: () => {} };
    assert.throws(
      () => new DnsWatcher('users', { name: 'u', port: undefined, type: 'A', refreshMs: 30_000 }, options),
      (err: unknown) => err instanceof MeshConfigError && err.path === 'services.users.dns.port',
    );
    assert.throws(
      () => new DnsWatcher('users', { name: 'u', port: 80, type: 'AAAA', refreshMs: 500 }, options),
      (err: unknown) => err instanceof MeshConfigError && err.path === 'services.users.dns.refreshMs',
    );
    // SRV needs no port.
    new DnsWatcher('users', { name: 'u', port: undefined, type: 'SRV', refreshMs: 1_000 }, options).stop();
  });
});
