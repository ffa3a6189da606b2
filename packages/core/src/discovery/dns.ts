/**
 * Keeps one service's endpoint set from DNS (`services.<name>.dns` in the config), for the mesh
 * and for the control server. Resolution runs on timers, never on the call path: the owner gets
 * `onEndpoints` when the set changes and swaps its balancer's endpoints; calls never wait on DNS.
 *
 * Rules (each one is tested in test/discovery/dns.test.ts):
 * - Resolve at `start()`, then every `refreshMs` from the start of the previous lookup, sooner
 *   when the smallest TTL of the last answer is shorter, but never sooner than 1 s after the
 *   previous lookup started (a TTL of 0 means "1 s"). A failed lookup is retried after 1 s, 2 s,
 *   4 s, … capped at `refreshMs`, so a service that starts while DNS is down gets its endpoints
 *   soon after DNS comes back, and a broken name costs at most one query per `refreshMs`.
 * - A/AAAA: one endpoint `ip:port` (`[ip6]:port`) per address, weight 1.
 * - SRV: only the records of the lowest priority value are used (no failover to higher
 *   priority groups: a failing endpoint is the outlier detector's business, and failing over
 *   would need health knowledge DNS does not have). Records with target "." (RFC 2782:
 *   "not available here") are ignored. Each target is resolved to its A and AAAA addresses and
 *   each address becomes `ip:port` with the record's port and weight (SRV weight 0 counts as 1;
 *   an address reached through several records gets the sum of their weights, at most
 *   1 000 000). A target with neither A nor AAAA records (NXDOMAIN/NODATA on both) is left out;
 *   any other failure on a target (SERVFAIL, timeout, …) fails the whole lookup. Node's resolver
 *   gives no TTL for SRV records, so the TTL used is the smallest of the targets' A/AAAA TTLs.
 * - A lookup that fails, or answers with no usable address (NODATA, NXDOMAIN, every SRV target
 *   gone), is an error: `onError` gets a `DnsResolutionError`, and the last good set stays. A
 *   DNS answer that briefly says "no such name" (a zone reload, a negative-caching resolver,
 *   a split-horizon hiccup) must not empty a running service; a service that really went away
 *   is removed from the config, not from DNS.
 * - `onEndpoints` is called with the sorted, deduplicated set when it differs from the last one
 *   reported, and always after the first successful lookup.
 * - Lookups never overlap; `refreshNow()` while one is in flight returns that one.
 * - Timers are unref'd: a watcher never keeps a process alive. `stop()` clears the timer and
 *   drops the result of a lookup in flight (a watcher's own default resolver also cancels it).
 * - Every lookup asks the DNS server: Node's resolver keeps no cache (c-ares ≥ 1.31 caches answers
 *   for their TTL, which Node turns off since nodejs/node#57640; on the few releases before it, a
 *   change shows up at most one TTL late, as with any caching resolver).
 * - An exception thrown by `onEndpoints` or `onError` does not stop the watcher; it is emitted as
 *   a process warning. If `onEndpoints` threw, the same set is offered again after the next lookup.
 */
import { promises as dnsPromises } from 'node:dns';
import { isIP } from 'node:net';
import { systemClock } from '../clock.js';
import { DnsResolutionError, MeshConfigError } from '../errors.js';

/** What to resolve: the resolved form of `services.<name>.dns`. */
export interface DnsTarget {
  /** DNS name to query (for SRV, e.g. `_http._tcp.users.example.com`). */
  name: string;
  /** Port of every endpoint for A/AAAA (required there); ignored for SRV (the records carry it). */
  port: number | undefined;
  type: 'A' | 'AAAA' | 'SRV';
  /** Longest time between lookups, ms (1000 … 2^31−1). Lookups come sooner when the TTL is shorter. */
  refreshMs: number;
}

/** The part of `dns.promises.Resolver` the watcher uses. */
export interface DnsResolverLike {
  resolve4(name: string, options: { ttl: true }): Promise<Array<{ address: string; ttl: number }>>;
  resolve6(name: string, options: { ttl: true }): Promise<Array<{ address: string; ttl: number }>>;
  resolveSrv(name: string): Promise<Array<{ name: string; port: number; priority: number; weight: number }>>;
}

/** A timer handle as returned by `setTimeout` (or a fake one). */
export interface DnsTimer {
  unref?(): void;
  ref?(): void;
}

/** One endpoint found in DNS. */
export interface DnsEndpoint {
  /** `ip:port`, IPv6 as `[ip]:port`. */
  address: string;
  /** Relative weight, 1 … 1 000 000 (1 for A/AAAA). */
  weight: number;
}

export interface DnsWatcherOptions {
  /** Default: a `new dns.promises.Resolver()` of the watcher's own (honours /etc/resolv.conf). */
  resolver?: DnsResolverLike;
  /** Milliseconds clock. Default: `performance.now()`. */
  clock?: { now(): number };
  /** Default: `setTimeout`. The watcher calls `unref()` on what it returns, when there is one. */
  setTimer?: (fn: () => void, ms: number) => DnsTimer;
  /** Default: `clearTimeout`. */
  clearTimer?: (timer: DnsTimer) => void;
  /** The endpoint set changed (sorted by address, deduplicated); always called after the first successful lookup. */
  onEndpoints(endpoints: DnsEndpoint[]): void;
  /** A lookup failed or found no address; the last good set is kept (`onEndpoints` is not called). */
  onError(err: DnsResolutionError): void;
}

/** No two lookups start less than this apart, whatever the TTL (a TTL of 0 included). */
const MIN_INTERVAL_MS = 1000;
/** Largest endpoint weight the config accepts. */
const MAX_WEIGHT = 1_000_000;
/** Largest `setTimeout` delay. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const WITH_TTL = { ttl: true } as const;

/** Resolver codes that mean "this name has no such record" rather than "DNS did not answer". */
const NO_RECORD = new Set(['ENOTFOUND', 'ENODATA']);

/** A failed or empty lookup, before it becomes a DnsResolutionError. */
class LookupFailure extends Error {
  constructor(
    readonly resolverCode: string,
    message: string,
    readonly original?: unknown,
  ) {
    super(message);
  }
}

interface Answer {
  endpoints: DnsEndpoint[];
  /** Smallest TTL of the answer, seconds; undefined when none was given (SRV targets that are IP literals). */
  ttl: number | undefined;
}

/** Keeps one service's endpoint set from DNS. See the module comment for the rules. */
export class DnsWatcher {
  private readonly resolver: DnsResolverLike;
  /** The resolver the watcher made itself, so `stop()` may cancel its queries (a passed-in one may be shared). */
  private readonly ownResolver: InstanceType<typeof dnsPromises.Resolver> | undefined;
  private readonly clock: { now(): number };
  private readonly setTimer: (fn: () => void, ms: number) => DnsTimer;
  private readonly clearTimer: (timer: DnsTimer) => void;
  private readonly refreshMs: number;
  private readonly port: number;

  private running = false;
  private stopped = false;
  /** Bumped by `stop()`: a lookup that finishes under an older generation is dropped. */
  private generation = 0;
  private timer: DnsTimer | undefined;
  private inFlight: Promise<void> | undefined;
  private failures = 0;
  private current: DnsEndpoint[] = [];
  /** Whether `current` reached `onEndpoints` without it throwing. */
  private delivered = false;
  private error: DnsResolutionError | undefined;

  constructor(
    readonly service: string,
    readonly target: DnsTarget,
    private readonly options: DnsWatcherOptions,
  ) {
    const path = `services.${service}.dns`;
    if (target.type !== 'SRV') {
      const port = target.port;
      if (port === undefined || !Number.isInteger(port) || port < 1 || port > 65535) {
        throw new MeshConfigError([
          { path: `${path}.port`, message: `expected a port 1..65535 for type ${target.type}, got ${String(port)}` },
        ]);
      }
    }
    if (!(
      Number.isInteger(target.refreshMs) &&
      target.refreshMs >= MIN_INTERVAL_MS &&
      target.refreshMs <= MAX_TIMER_MS
    )) {
      throw new MeshConfigError([
        {
          path: `${path}.refreshMs`,
          message: `expected an integer from ${MIN_INTERVAL_MS} to ${MAX_TIMER_MS} (ms), got ${String(target.refreshMs)}`,
        },
      ]);
    }
    this.port = target.port ?? 0;
    this.refreshMs = target.refreshMs;
    if (options.resolver !== undefined) {
      this.resolver = options.resolver;
      this.ownResolver = undefined;
    } else {
      this.ownResolver = new dnsPromises.Resolver();
      this.resolver = this.ownResolver;
    }
    this.clock = options.clock ?? systemClock;
    this.setTimer = options.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer = options.clearTimer ?? ((t) => clearTimeout(t as ReturnType<typeof setTimeout>));
  }

  /** The last good endpoint set (empty before the first successful lookup). */
  get endpoints(): readonly DnsEndpoint[] {
    return this.current;
  }

  /** The error of the last lookup, or undefined when it succeeded (or none finished yet). */
  get lastError(): Error | undefined {
    return this.error;
  }

  /** Starts resolving: a lookup now, then on the refresh schedule. No-op when already running. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.stopped = false;
    void this.run();
  }

  /** Stops: clears the timer and drops the result of a lookup in flight. `start()` may be called again. */
  stop(): void {
    this.running = false;
    this.stopped = true;
    this.generation++;
    this.inFlight = undefined;
    if (this.timer !== undefined) {
      this.clearTimer(this.timer);
      this.timer = undefined;
    }
    this.ownResolver?.cancel();
  }

  /**
   * Looks up now (the lookup in flight, if there is one) and, when running, reschedules from it.
   * Resolves when the lookup has been reported; never rejects (failures go to `onError`).
   * Before `start()` it performs one lookup; after `stop()` it does nothing.
   */
  refreshNow(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return this.run();
  }

  private run(): Promise<void> {
    if (this.inFlight !== undefined) return this.inFlight;
    if (this.timer !== undefined) {
      this.clearTimer(this.timer);
      this.timer = undefined;
    }
    const generation = this.generation;
    const startedAt = this.clock.now();
    const lookup = this.lookup().then(
      (answer) => {
        if (generation !== this.generation) return;
        this.inFlight = undefined;
        if (answer.endpoints.length === 0)
          this.fail(new LookupFailure('ENODATA', 'the answer has no address'), startedAt);
        else this.succeed(answer, startedAt);
      },
      (err: unknown) => {
        if (generation !== this.generation) return;
        this.inFlight = undefined;
        this.fail(err, startedAt);
      },
    );
    this.inFlight = lookup;
    return lookup;
  }

  private succeed(answer: Answer, startedAt: number): void {
    this.failures = 0;
    this.error = undefined;
    const changed = !this.delivered || !sameEndpoints(this.current, answer.endpoints);
    this.current = answer.endpoints;
    if (changed) {
      try {
        this.options.onEndpoints(answer.endpoints);
        this.delivered = true;
      } catch (err) {
        this.delivered = false;
        warn(this.service, 'onEndpoints', err);
      }
    }
    const ttlMs = answer.ttl === undefined ? Number.POSITIVE_INFINITY : answer.ttl * 1000;
    this.schedule(Math.min(this.refreshMs, ttlMs), startedAt);
  }

  private fail(err: unknown, startedAt: number): void {
    this.failures++;
    const failure =
      err instanceof LookupFailure
        ? err
        : new LookupFailure(codeOf(err), explain(codeOf(err), this.target.type, err), err);
    const error = new DnsResolutionError(
      this.service,
      this.target.name,
      this.target.type,
      failure.resolverCode,
      failure.message,
      this.current.length,
      failure.original ?? err,
    );
    this.error = error;
    try {
      this.options.onError(error);
    } catch (thrown) {
      warn(this.service, 'onError', thrown);
    }
    // 1 s, 2 s, 4 s, … up to refreshMs (the exponent is capped so the power stays finite).
    this.schedule(Math.min(this.refreshMs, MIN_INTERVAL_MS * 2 ** Math.min(this.failures - 1, 31)), startedAt);
  }

  /** Arms the timer for the next lookup, `periodMs` after `startedAt` (at least 1 s after it). */
  private schedule(periodMs: number, startedAt: number): void {
    if (!this.running) return;
    const due = startedAt + Math.max(MIN_INTERVAL_MS, periodMs);
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, Math.ceil(due - this.clock.now())));
    const timer = this.setTimer(() => {
      if (this.timer !== timer) return;
      this.timer = undefined;
      void this.run();
    }, delay);
    timer.unref?.();
    this.timer = timer;
  }

  private async lookup(): Promise<Answer> {
    const { name, type } = this.target;
    if (type === 'SRV') return this.lookupSrv(name);
    const records =
      type === 'A' ? await this.resolver.resolve4(name, WITH_TTL) : await this.resolver.resolve6(name, WITH_TTL);
    const byAddress = new Map<string, DnsEndpoint>();
    let ttl: number | undefined;
    for (const record of records) {
      const address = hostPort(record.address, this.port);
      if (!byAddress.has(address)) byAddress.set(address, { address, weight: 1 });
      ttl = minTtl(ttl, record.ttl);
    }
    return { endpoints: sorted(byAddress), ttl };
  }

  private async lookupSrv(name: string): Promise<Answer> {
    const records = await this.resolver.resolveSrv(name);
    let lowest = Number.POSITIVE_INFINITY;
    for (const r of records) if (usableTarget(r.name) && r.priority < lowest) lowest = r.priority;
    const group = records.filter((r) => usableTarget(r.name) && r.priority === lowest);
    if (group.length === 0) {
      throw new LookupFailure(
        'ENODATA',
        records.length === 0 ? 'no SRV records' : 'no SRV record with a usable target',
      );
    }
    // One A + AAAA lookup per distinct target, however many records name it.
    const targets = new Map<string, Promise<Answer>>();
    for (const r of group) if (!targets.has(r.name)) targets.set(r.name, this.lookupTarget(r.name));
    const addresses = new Map<string, Answer>();
    await Promise.all([...targets].map(async ([target, answer]) => addresses.set(target, await answer)));

    const byAddress = new Map<string, DnsEndpoint>();
    let ttl: number | undefined;
    for (const r of group) {
      const answer = addresses.get(r.name);
      if (answer === undefined) continue;
      ttl = minTtl(ttl, answer.ttl);
      const weight = Math.max(1, r.weight);
      for (const ip of answer.endpoints) {
        const address = hostPort(ip.address, r.port);
        const seen = byAddress.get(address);
        if (seen === undefined) byAddress.set(address, { address, weight: Math.min(MAX_WEIGHT, weight) });
        else seen.weight = Math.min(MAX_WEIGHT, seen.weight + weight);
      }
    }
    if (byAddress.size === 0) {
      throw new LookupFailure(
        'ENOTFOUND',
        `none of the SRV targets (${[...targets.keys()].join(', ')}) has an A or AAAA record`,
      );
    }
    return { endpoints: sorted(byAddress), ttl };
  }

  /** A target's A and AAAA addresses (in `endpoints[].address`, without port). */
  private async lookupTarget(target: string): Promise<Answer> {
    if (isIP(target) !== 0) return { endpoints: [{ address: target, weight: 1 }], ttl: undefined };
    const [v4, v6] = await Promise.allSettled([
      this.resolver.resolve4(target, WITH_TTL),
      this.resolver.resolve6(target, WITH_TTL),
    ]);
    const endpoints: DnsEndpoint[] = [];
    let ttl: number | undefined;
    let failure: unknown;
    for (const result of [v4, v6]) {
      if (result.status === 'fulfilled') {
        for (const r of result.value) {
          endpoints.push({ address: r.address, weight: 1 });
          ttl = minTtl(ttl, r.ttl);
        }
      } else if (!NO_RECORD.has(codeOf(result.reason))) {
        failure ??= result.reason;
      }
    }
    // One family answering is enough (a server that drops AAAA queries must not block a v4 fleet);
    // with no address at all, a real failure fails the lookup, while "no such record" leaves the target out.
    if (endpoints.length === 0 && failure !== undefined) {
      const code = codeOf(failure);
      throw new LookupFailure(code, `resolving SRV target "${target}": ${explain(code, 'A/AAAA', failure)}`, failure);
    }
    return { endpoints, ttl };
  }
}

function usableTarget(target: string): boolean {
  return target !== '' && target !== '.';
}

function hostPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

function minTtl(ttl: number | undefined, next: number | undefined): number | undefined {
  if (next === undefined || !Number.isFinite(next) || next < 0) return ttl;
  return ttl === undefined || next < ttl ? next : ttl;
}

function sorted(byAddress: Map<string, DnsEndpoint>): DnsEndpoint[] {
  return [...byAddress.values()].sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
}

function sameEndpoints(a: readonly DnsEndpoint[], b: readonly DnsEndpoint[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (a[i].address !== b[i].address || a[i].weight !== b[i].weight) return false;
  }
  return true;
}

function codeOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code !== '' ? code : 'EUNKNOWN';
}

/** A short human reading of Node's resolver codes. */
function explain(code: string, type: string, err: unknown): string {
  switch (code) {
    case 'ENOTFOUND':
      return 'no such name (NXDOMAIN)';
    case 'ENODATA':
      return `the name has no ${type} record`;
    case 'EBADNAME':
      return 'not a valid DNS name';
    case 'ESERVFAIL':
      return 'the DNS server failed to answer (SERVFAIL)';
    case 'ETIMEOUT':
      return 'the DNS server did not answer in time';
    case 'ECONNREFUSED':
      return 'the DNS server refused the connection';
    case 'EREFUSED':
      return 'the DNS server refused the query';
    case 'ECANCELLED':
      return 'the lookup was cancelled';
    default:
      return err instanceof Error && err.message !== '' ? err.message : String(err);
  }
}

function warn(service: string, callback: string, err: unknown): void {
  const message = err instanceof Error ? err.message : String(err);
  process.emitWarning(`meshlet: DNS watcher of service "${service}": ${callback} threw: ${message}`, {
    code: 'MESHLET_DNS_CALLBACK',
  });
}
