/**
 * The control-plane client: a `DiscoverySource` over one bidirectional gRPC stream
 * (meshlet.v1.AggregatedDiscoveryService/StreamResources), xDS v3 ADS state-of-the-world style.
 *
 * - Subscribes (wildcard) to Service and EndpointSet resources; checks each resource of each
 *   response on its own, applies the valid ones, keeps the last good version of each invalid one,
 *   then ACKs (all valid) or NACKs (naming each rejected resource and why). A response is state
 *   of the world, or incremental (only the changed resources and the removed names, applied on
 *   top of what the client holds; never before a state-of-the-world one on the same stream).
 * - Services whose resources did not change reach `sink.update` as the same objects as before,
 *   so the mesh skips validating them again.
 * - Until both types have arrived once, nothing is handed to the mesh (a config without endpoints
 *   would fail calls), unless the disk cache was served first.
 * - On a broken stream: reconnects with exponential backoff and jitter (reset after a response),
 *   serves the last good config meanwhile, resubscribes with the versions it last accepted and
 *   resends its registrations.
 * - Self-registration: the whole set of registrations travels with a revision; `register()`
 *   resolves when the server answers that revision.
 *
 * Nothing that arrives from the network can throw out of here: every handler is guarded, and
 * every failure becomes a NACK, a `sink.error()` report and a line of `describe()`.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import * as grpc from '@grpc/grpc-js';
import {
  MeshConfigError,
  validateServiceConfig,
  type DiscoverySink,
  type DiscoverySource,
  type Registration,
  type RegistrationHandle,
  type ServiceConfig,
  type SourceContext,
} from '@meshlet/core';
import {
  REGISTRATION_TYPE_URL,
  STREAM_RESOURCES_PATH,
  decodeResponse,
  encodeRegistration,
  encodeRequest,
  loadProtocolTypes,
  shortName,
  type DiscoveryRequestInput,
  type DiscoveryResponse,
  type JsonObject,
  type NodeInput,
} from '../protocol/index.js';
import { ControlPlaneError, DiscoveryCacheError, RegistrationError } from '../errors.js';
import { Backoff } from './backoff.js';
import { cacheFile, readCacheFile, writeCacheFile, CACHE_FORMAT } from './cache.js';
import { resolveControlPlaneOptions, type ControlPlaneOptions, type ResolvedControlPlaneOptions } from './options.js';
import {
  TYPE_NAMES,
  TYPE_URLS,
  UNNAMED,
  combine,
  evaluateIncremental,
  evaluateResponse,
  resourceTypeOf,
  servicesNamed,
  split,
  type CombineCache,
  type Rejection,
  type ResourceMap,
  type ResourceMemo,
  type ResourceType,
} from './state.js';

/** meshlet's version, sent as `node.user_agent_version`. */
export const CLIENT_VERSION = '0.1.0';
const CLOSE_WITHDRAW_MS = 1000;
/** Rounds of "reject the services a config error names, try again" before a response is refused whole. */
const MAX_MERGE_ROUNDS = 4;
/** At most this many rejected resources are spelled out in a NACK. */
const MAX_NACK_DETAILS = 100;
/** Largest response accepted from the control server (the whole state of the world of one type). */
const MAX_RECEIVE_BYTES = 64 * 1024 * 1024;
const KEEPALIVE_MS = 60_000;
/**
 * Longest time a new service from a Service response waits for its EndpointSet before it (and
 * the routes to it) apply without endpoints. Servers that send an EndpointSet for every service
 * (meshlet's does) end the wait with that response, in a few ms.
 */
const WARMING_MS = 1000;
const KEEPALIVE_TIMEOUT_MS = 20_000;

interface Waiter {
  revision: number;
  /** Registration id for register(), undefined for withdraw()/close(). */
  id: number | undefined;
  settle(err: Error | undefined): void;
  timer: NodeJS.Timeout | undefined;
}

type Duplex = grpc.ClientDuplexStream<DiscoveryRequestInput, DiscoveryResponse>;

/**
 * A discovery source fed by a meshlet control server (`meshlet control`).
 *
 * ```ts
 * createMesh({ service: 'orders', discovery: [controlPlane({ address: '127.0.0.1:15010', cacheDir: '/var/cache/meshlet' })] });
 * ```
 * Throws `MeshConfigError` for invalid options.
 */
export function controlPlane(options: ControlPlaneOptions): DiscoverySource {
  return new ControlPlaneSource(resolveControlPlaneOptions(options));
}

export class ControlPlaneSource implements DiscoverySource {
  readonly name: string;
  private readonly opts: ResolvedControlPlaneOptions;
  private readonly backoff: Backoff;
  private readonly nodeId: string;
  private readonly cachePath: string | undefined;

  private sink: DiscoverySink | undefined;
  private context: SourceContext | undefined;
  private client: grpc.Client | undefined;
  private call: Duplex | undefined;
  private connected = false;
  private closing = false;
  private closed = false;
  private closePromise: Promise<void> | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private reconnectAt = 0;
  private attempts = 0;

  // Resources: the last good version of each, by type.
  private services: ResourceMap = new Map();
  private endpointSets: ResourceMap = new Map();
  private readonly memos: Record<ResourceType, ResourceMemo> = { service: new Map(), endpointSet: new Map() };
  /** Last version accepted (ACKed) per type; sent again when resubscribing. */
  private readonly versions: Record<ResourceType, string | undefined> = { service: undefined, endpointSet: undefined };
  /** Types the control plane has delivered at least once in this process. */
  private readonly received = new Set<ResourceType>();
  /** Types that got a state-of-the-world response on the current stream (the base of incremental ones). */
  private readonly sotwOnStream = new Set<ResourceType>();
  /** The combined objects last built, so unchanged services keep their identity (see `CombineCache`). */
  private readonly combined: CombineCache = new Map();
  /** What the mesh last accepted from this source. */
  private delivered: Record<string, ServiceConfig> | undefined;
  private cacheServed: { savedAt: string; versions: Record<string, string> } | undefined;
  private cacheDirty = false;
  private cacheWriting: Promise<void> | undefined;
  private lastError: { message: string; at: number } | undefined;
  private lastNack: { type: string; version: string; message: string; at: number } | undefined;
  /** New services held back until their EndpointSet arrives (see `deliver`), and the timer that bounds the wait. */
  /** Held-back service → when its wait began (Date.now()), so repeated Service pushes cannot extend the wait. */
  private warming = new Map<string, number>();
  private warmingTimer: NodeJS.Timeout | undefined;
  private readonly warmingMs: number;

  // Registrations.
  private readonly registrations = new Map<number, Registration>();
  private registrationSeq = 0;
  private revision = 0;
  private waiters: Waiter[] = [];

  constructor(
    opts: ResolvedControlPlaneOptions,
    random: () => number = Math.random,
    internals: { warmingMs?: number } = {},
  ) {
    this.opts = opts;
    this.warmingMs = internals.warmingMs ?? WARMING_MS;
    this.name = `control plane ${opts.address}`;
    this.backoff = new Backoff(opts.backoff, random);
    this.nodeId = opts.node.id ?? `${hostname()}/${process.pid}/${randomBytes(4).toString('hex')}`;
    this.cachePath = opts.cacheDir === undefined ? undefined : cacheFile(opts.cacheDir, opts.address);
  }

  start(sink: DiscoverySink, context: SourceContext): void {
    if (this.sink !== undefined || this.closing) return;
    this.sink = sink;
    this.context = context;
    if (this.cachePath !== undefined) void this.loadCache(this.cachePath).catch((err) => this.report(err));
    this.open();
  }

  /** Opens a stream once the codec is loaded (its .proto is read asynchronously: no synchronous I/O here). */
  private open(): void {
    this.reconnectTimer = undefined;
    if (this.closing) return;
    loadProtocolTypes().then(
      () => this.connect(),
      (err: unknown) =>
        this.onStreamEnd(undefined, `cannot load the protocol definition (${(err as Error).message})`, undefined),
    );
  }

  describe(): string {
    const parts: string[] = [];
    if (this.closed) parts.push('closed');
    else if (this.connected) parts.push('connected');
    else if (this.call !== undefined) parts.push('stream opened, no answer from the server yet');
    else if (this.reconnectTimer !== undefined)
      parts.push(
        `not connected, retrying in ${Math.max(0, Math.ceil((this.reconnectAt - Date.now()) / 1000))} s (attempt ${this.attempts + 1})`,
      );
    else parts.push('not connected');
    const versions = (Object.keys(TYPE_URLS) as ResourceType[])
      .map(
        (t) =>
          `${TYPE_NAMES[t]} ${this.received.has(t) ? `version ${JSON.stringify(this.versions[t] ?? '')}` : 'not received'}`,
      )
      .join(', ');
    parts.push(versions);
    if (this.cacheServed !== undefined && !this.deliveredFromStream())
      parts.push(`serving the disk cache ${this.cachePath} saved at ${this.cacheServed.savedAt || 'an unknown time'}`);
    if (this.warming.size > 0) {
      const names = [...this.warming.keys()].slice(0, 10).map((n) => JSON.stringify(n));
      parts.push(`waiting for the endpoints of new services ${names.join(', ')}`);
    }
    if (this.lastError !== undefined)
      parts.push(`last error at ${new Date(this.lastError.at).toISOString()}: ${this.lastError.message}`);
    if (this.lastNack !== undefined)
      parts.push(
        `last NACK of ${this.lastNack.type} version ${JSON.stringify(this.lastNack.version)} at ${new Date(this.lastNack.at).toISOString()}: ${this.lastNack.message.split('\n').join('; ')}`,
      );
    return `${this.name}: ${parts.join('; ')}`;
  }

  // ---------------------------------------------------------------------------------------------
  // Stream

  private connect(): void {
    this.reconnectTimer = undefined;
    if (this.closing) return;
    let call: Duplex;
    try {
      const client = new grpc.Client(this.opts.address, this.opts.credentials ?? grpc.credentials.createInsecure(), {
        'grpc.max_receive_message_length': MAX_RECEIVE_BYTES,
        'grpc.primary_user_agent': `meshlet-node/${CLIENT_VERSION}`,
        // A control server that vanished without closing the connection (a partition, a dead
        // host) is noticed within ~80 s instead of never: the stream is otherwise idle.
        'grpc.keepalive_time_ms': KEEPALIVE_MS,
        'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
      });
      this.client = client;
      call = client.makeBidiStreamRequest(STREAM_RESOURCES_PATH, encodeRequest, decodeResponse) as Duplex;
    } catch (err) {
      this.onStreamEnd(undefined, `cannot open a stream (${(err as Error).message})`, undefined);
      return;
    }
    this.call = call;
    this.sotwOnStream.clear();
    call.on('metadata', () => {
      if (this.call === call) this.connected = true;
    });
    call.on('data', (res: DiscoveryResponse) => {
      if (this.call !== call) return;
      try {
        this.onResponse(res);
      } catch (err) {
        this.report(
          new ControlPlaneError(
            this.opts.address,
            `a response could not be handled (${(err as Error).message})`,
            undefined,
            { cause: err },
          ),
        );
      }
    });
    // grpc-js emits 'error' for every non-OK status, then 'status'; the stream ends on 'status'.
    call.on('error', () => {});
    call.on('status', (status: grpc.StatusObject) => {
      if (this.call !== call) return;
      const why =
        status.code === grpc.status.OK
          ? 'the control server ended the stream'
          : `stream failed: ${status.details || grpc.status[status.code]} (gRPC ${grpc.status[status.code] ?? status.code})`;
      this.onStreamEnd(call, why, status.code);
    });

    const node: NodeInput = {
      id: this.nodeId,
      cluster: this.context?.service ?? '',
      userAgentName: 'meshlet-node',
      userAgentVersion: CLIENT_VERSION,
      metadata: this.opts.node.metadata,
    };
    if (this.opts.node.zone !== undefined) node.zone = this.opts.node.zone;
    this.send({ typeUrl: TYPE_URLS.service, versionInfo: this.versions.service ?? '', resourceNames: [], node });
    this.send({ typeUrl: TYPE_URLS.endpointSet, versionInfo: this.versions.endpointSet ?? '', resourceNames: [] });
    if (this.registrations.size > 0) this.sendRegistrations(++this.revision);
  }

  private send(req: DiscoveryRequestInput): boolean {
    const call = this.call;
    if (call === undefined) return false;
    try {
      call.write(req);
      return true;
    } catch (err) {
      this.report(
        new ControlPlaneError(this.opts.address, `cannot send a request (${(err as Error).message})`, undefined, {
          cause: err,
        }),
      );
      return false;
    }
  }

  private onStreamEnd(call: Duplex | undefined, why: string, code: number | undefined): void {
    const client = this.client;
    this.call = undefined;
    this.client = undefined;
    this.connected = false;
    if (call !== undefined) {
      try {
        call.cancel();
      } catch {
        // already over
      }
    }
    try {
      client?.close();
    } catch {
      // already closed
    }
    if (this.closing) return;
    const delay = this.backoff.next();
    this.attempts++;
    const err = new ControlPlaneError(this.opts.address, `${why}; reconnecting in ${delay} ms`, code);
    this.lastError = { message: err.message, at: Date.now() };
    this.report(err, false);
    this.reconnectAt = Date.now() + delay;
    this.reconnectTimer = setTimeout(() => this.open(), delay);
  }

  private onResponse(res: DiscoveryResponse): void {
    this.connected = true;
    this.backoff.reset();
    this.attempts = 0;
    const typeUrl = typeof res.typeUrl === 'string' ? res.typeUrl : '';
    if (typeUrl === REGISTRATION_TYPE_URL) {
      this.onRegistrationReply(res);
      return;
    }
    const type = resourceTypeOf(typeUrl);
    if (type === undefined) {
      this.nack(typeUrl, '', res, [
        {
          name: UNNAMED,
          reason: `unknown resource type "${shortName(typeUrl)}" (this client subscribes to ${TYPE_URLS.service} and ${TYPE_URLS.endpointSet})`,
        },
      ]);
      return;
    }
    const version = typeof res.versionInfo === 'string' ? res.versionInfo : '';
    const current = type === 'service' ? this.services : this.endpointSets;
    const incremental = res.incremental === true;
    if (incremental && !this.sotwOnStream.has(type)) {
      // A change needs a base: what this client holds may come from the disk cache or an earlier
      // stream, not from this server's sequence. Keep everything; the next response or a
      // resubscription brings the state of the world.
      this.nack(typeUrl, this.versions[type] ?? '', res, [
        {
          name: UNNAMED,
          reason: `an incremental ${TYPE_NAMES[type]} response before any state-of-the-world one on this stream; nothing of it applied`,
        },
      ]);
      return;
    }
    const evaluation = incremental
      ? evaluateIncremental(type, res.resources, res.removedResources, current, this.memos[type])
      : evaluateResponse(type, res.resources, current, this.memos[type]);
    if (!incremental) this.sotwOnStream.add(type);
    let next = evaluation.next;
    const rejected = evaluation.rejected;
    this.received.add(type);
    if (this.received.size === 2 || this.cacheServed !== undefined) {
      next = this.deliver(type, current, next, rejected);
    }
    if (type === 'service') this.services = next;
    else this.endpointSets = next;
    if (rejected.length === 0) {
      this.versions[type] = version;
      this.send({ typeUrl, versionInfo: version, responseNonce: res.nonce ?? '', resourceNames: [] });
    } else {
      this.nack(typeUrl, this.versions[type] ?? '', res, rejected);
    }
    // After the version update, so the file names the versions it holds.
    if (this.cacheDirty) this.scheduleCacheWrite();
  }

  /**
   * Hands the combined view to the mesh. A `MeshConfigError` (a problem across resources, e.g. a
   * route to a service that is gone) rejects the services it names: each goes back to what the
   * mesh last accepted for it, and the view is tried again. If that does not settle it, none of
   * this response applies. Returns the resources of `type` to keep.
   */
  private deliver(type: ResourceType, current: ResourceMap, next: ResourceMap, rejected: Rejection[]): ResourceMap {
    const sink = this.sink;
    if (sink === undefined) return current;
    const services = type === 'service' ? next : this.services;
    const endpointSets = type === 'endpointSet' ? next : this.endpointSets;
    const view = combine(services, endpointSets, this.combined);
    // Make before break: a service that is new in a Service response and whose EndpointSet has not
    // arrived yet is held back, with the routes to it, until its EndpointSet response (xDS clients
    // warm a new cluster the same way), so traffic never shifts to a service with no endpoints.
    const warming = type === 'service' ? this.holdBack(view, services, endpointSets) : new Set<string>();
    const reverted = new Set<string>();
    let lastError: unknown;
    for (let round = 0; round < MAX_MERGE_ROUNDS; round++) {
      try {
        sink.update({ services: view });
        this.delivered = view;
        this.cacheDirty = true;
        this.setWarming(warming);
        return next;
      } catch (err) {
        lastError = err;
        if (!(err instanceof MeshConfigError)) break;
        const named = servicesNamed(err.issues, (n) => Object.hasOwn(view, n));
        let progress = false;
        for (const [name, lines] of named) {
          if (name === UNNAMED || reverted.has(name)) continue;
          progress = true;
          reverted.add(name);
          const last = current.get(name);
          if (last !== undefined) next.set(name, last);
          else next.delete(name);
          const before =
            this.delivered !== undefined && Object.hasOwn(this.delivered, name) ? this.delivered[name] : undefined;
          if (before !== undefined) view[name] = before;
          else delete view[name];
          addRejection(rejected, name, lines.join('; '));
        }
        if (!progress) break;
      }
    }
    // Nothing of this response applies: the mesh keeps what it had.
    const reason =
      lastError instanceof MeshConfigError
        ? lastError.issues.map((i) => `${i.path}: ${i.message}`).join('; ')
        : `the mesh refused the config (${lastError instanceof Error ? lastError.message : String(lastError)})`;
    rejected.push({
      name: UNNAMED,
      reason: `the whole response was rejected: ${reason.length > 2000 ? `${reason.slice(0, 2000)}…` : reason}`,
    });
    return current;
  }

  /** Removes the warming services (and whatever routes to them) from `view`; returns their names. */
  private holdBack(view: Record<string, ServiceConfig>, services: ResourceMap, endpointSets: ResourceMap): Set<string> {
    const held = new Set<string>();
    const delivered = this.delivered;
    const now = Date.now();
    for (const [name, config] of services) {
      if (endpointSets.has(name) || Object.hasOwn(config as JsonObject, 'dns')) continue;
      if (delivered !== undefined && Object.hasOwn(delivered, name)) continue;
      const since = this.warming.get(name);
      if (since !== undefined && now - since >= this.warmingMs) continue; // waited long enough
      held.add(name);
    }
    if (held.size === 0) return held;
    for (const name of held) delete view[name];
    for (let changed = true; changed;) {
      changed = false;
      for (const name of Object.keys(view)) {
        if (!routesTo(view[name], held)) continue;
        const before = delivered !== undefined && Object.hasOwn(delivered, name) ? delivered[name] : undefined;
        if (before !== undefined && !routesTo(before, held)) view[name] = before;
        else {
          delete view[name];
          held.add(name);
          changed = true;
        }
      }
    }
    return held;
  }

  private setWarming(names: Set<string>): void {
    const now = Date.now();
    const next = new Map<string, number>();
    let first = Infinity;
    for (const name of names) {
      const since = this.warming.get(name) ?? now;
      next.set(name, since);
      first = Math.min(first, since);
    }
    this.warming = next;
    if (this.warmingTimer !== undefined) clearTimeout(this.warmingTimer);
    this.warmingTimer = undefined;
    if (next.size > 0 && !this.closing) {
      this.warmingTimer = setTimeout(() => this.flushWarming(), Math.max(0, first + this.warmingMs - now));
    }
  }

  /** The EndpointSets of the warming services did not come: apply them without endpoints. */
  private flushWarming(): void {
    this.warmingTimer = undefined;
    if (this.warming.size === 0 || this.closing || this.sink === undefined) return;
    const names = [...this.warming.keys()];
    this.warming = new Map();
    const view = combine(this.services, this.endpointSets, this.combined);
    try {
      this.sink.update({ services: view });
      this.delivered = view;
      this.scheduleCacheWrite();
    } catch (err) {
      this.report(
        new ControlPlaneError(
          this.opts.address,
          `services ${names.map((n) => JSON.stringify(n)).join(', ')} got no EndpointSet within ${this.warmingMs} ms, and the mesh refused them without (${(err as Error).message}); they wait for the next push`,
          undefined,
          { cause: err },
        ),
      );
    }
  }

  private nack(typeUrl: string, keptVersion: string, res: DiscoveryResponse, rejected: Rejection[]): void {
    const shown = rejected.slice(0, MAX_NACK_DETAILS);
    const lines = shown.map((r) => `${r.name}: ${r.reason}`);
    if (rejected.length > shown.length) lines.push(`… and ${rejected.length - shown.length} more rejected resources`);
    const message = lines.join('\n');
    const version = typeof res.versionInfo === 'string' ? res.versionInfo : '';
    this.lastNack = { type: shortName(typeUrl) || '(no type)', version: shortName(version), message, at: Date.now() };
    this.send({
      typeUrl,
      versionInfo: keptVersion,
      responseNonce: typeof res.nonce === 'string' ? res.nonce : '',
      resourceNames: [],
      errorDetail: { code: grpc.status.INVALID_ARGUMENT, message, details: shown },
    });
    this.report(
      new ControlPlaneError(
        this.opts.address,
        `rejected (NACKed) ${rejected.length} resource(s) of ${shortName(typeUrl) || '(no type)'} version ${JSON.stringify(shortName(version))}, keeping their last good versions: ${message.split('\n').join('; ')}`,
      ),
      false,
    );
  }

  private deliveredFromStream(): boolean {
    return this.received.size === 2;
  }

  // ---------------------------------------------------------------------------------------------
  // Disk cache

  private async loadCache(file: string): Promise<void> {
    let contents;
    try {
      contents = await readCacheFile(file, this.opts.address);
    } catch (err) {
      this.report(new DiscoveryCacheError(file, 'read', (err as Error).message, { cause: err }));
      return;
    }
    // The control plane got here first (or the source is closing): its config is newer.
    if (contents === undefined || this.received.size > 0 || this.closing || this.sink === undefined) return;
    try {
      this.sink.update({ services: contents.services });
    } catch (err) {
      this.report(
        new DiscoveryCacheError(file, 'read', `does not hold a valid config (${(err as Error).message})`, {
          cause: err,
        }),
      );
      return;
    }
    const { services, endpointSets } = split(contents.services);
    this.services = services;
    this.endpointSets = endpointSets;
    this.delivered = contents.services;
    this.cacheServed = { savedAt: contents.savedAt, versions: contents.versions };
  }

  private scheduleCacheWrite(): void {
    if (this.cachePath === undefined || this.opts.cacheDir === undefined) return;
    this.cacheDirty = true;
    if (this.cacheWriting === undefined) {
      this.cacheWriting = this.writeCache(this.cachePath, this.opts.cacheDir).finally(() => {
        this.cacheWriting = undefined;
      });
    }
  }

  private async writeCache(file: string, dir: string): Promise<void> {
    while (this.cacheDirty && this.delivered !== undefined) {
      this.cacheDirty = false;
      const versions: Record<string, string> = {};
      for (const t of Object.keys(TYPE_URLS) as ResourceType[]) {
        const v = this.versions[t];
        if (v !== undefined) versions[TYPE_URLS[t]] = v;
      }
      try {
        await writeCacheFile(file, dir, {
          format: CACHE_FORMAT,
          address: this.opts.address,
          savedAt: new Date().toISOString(),
          versions,
          services: this.delivered,
        });
      } catch (err) {
        this.report(
          new DiscoveryCacheError(file, 'write', `cannot be written (${(err as Error).message})`, { cause: err }),
        );
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Registrations

  register(registration: Registration): Promise<RegistrationHandle> {
    const reg = copyRegistration(registration);
    if (this.closing) {
      return Promise.reject(
        new RegistrationError(this.opts.address, reg.service, reg.address, 'closed', 'the discovery source is closed'),
      );
    }
    try {
      const endpoint: Record<string, unknown> = { address: reg.address };
      if (reg.weight !== undefined) endpoint.weight = reg.weight;
      if (reg.zone !== undefined) endpoint.zone = reg.zone;
      if (reg.metadata !== undefined) endpoint.metadata = reg.metadata;
      validateServiceConfig(reg.service, { endpoints: [endpoint] }, 'registration');
    } catch (err) {
      return Promise.reject(err);
    }
    const id = ++this.registrationSeq;
    this.registrations.set(id, reg);
    const revision = ++this.revision;
    this.sendRegistrations(revision);
    const frozen = Object.freeze({ ...reg, ...(reg.metadata ? { metadata: Object.freeze({ ...reg.metadata }) } : {}) });
    const handle: RegistrationHandle = { registration: frozen, withdraw: () => this.withdraw(id) };
    return new Promise<RegistrationHandle>((resolve, reject) => {
      const waiter: Waiter = {
        revision,
        id,
        timer: undefined,
        settle: (err) => (err === undefined ? resolve(handle) : reject(err)),
      };
      waiter.timer = setTimeout(() => {
        this.removeWaiter(waiter);
        // The caller gets no handle: do not leave the registration announced behind its back.
        if (this.registrations.delete(id)) this.sendRegistrations(++this.revision);
        const state = this.connected
          ? 'connected, but the server did not answer'
          : `not connected (${this.lastError?.message ?? 'no stream yet'})`;
        reject(
          new RegistrationError(
            this.opts.address,
            reg.service,
            reg.address,
            'timeout',
            `no reply within ${this.opts.registrationTimeoutMs} ms (registrationTimeoutMs); ${state}`,
          ),
        );
      }, this.opts.registrationTimeoutMs);
      this.waiters.push(waiter);
    });
  }

  private async withdraw(id: number): Promise<void> {
    if (!this.registrations.delete(id)) return;
    const revision = ++this.revision;
    const sent = this.sendRegistrations(revision);
    // Disconnected: the server drops a stream's registrations when the stream ends anyway.
    if (!sent || this.closing) return;
    await this.waitForRevision(revision, this.opts.registrationTimeoutMs);
  }

  /** Resolves once the server answered `revision` (or a later one), or after `ms`. */
  private waitForRevision(revision: number, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const waiter: Waiter = { revision, id: undefined, timer: undefined, settle: () => resolve() };
      waiter.timer = setTimeout(() => {
        this.removeWaiter(waiter);
        resolve();
      }, ms);
      this.waiters.push(waiter);
    });
  }

  private removeWaiter(w: Waiter): void {
    const i = this.waiters.indexOf(w);
    if (i >= 0) this.waiters.splice(i, 1);
    if (w.timer !== undefined) clearTimeout(w.timer);
  }

  private sendRegistrations(revision: number): boolean {
    if (this.call === undefined) return false;
    return this.send({
      typeUrl: REGISTRATION_TYPE_URL,
      registrations: [...this.registrations.values()].map(encodeRegistration),
      registrationRevision: revision,
    });
  }

  private onRegistrationReply(res: DiscoveryResponse): void {
    const revision = Number(res.versionInfo);
    if (!Number.isSafeInteger(revision) || revision < 0) {
      this.report(
        new ControlPlaneError(
          this.opts.address,
          `a registration reply names revision ${JSON.stringify(shortName(String(res.versionInfo)))}, not a number; ignored`,
        ),
        false,
      );
      return;
    }
    const detail = res.errorDetail;
    const refused = new Map<string, string>();
    if (detail != null && Array.isArray(detail.details))
      for (const d of detail.details) refused.set(String(d.name), String(d.reason));
    const general =
      detail != null && detail.code !== 0 && refused.size === 0
        ? detail.message || `refused (gRPC code ${detail.code})`
        : undefined;
    const due = this.waiters.filter((w) => w.revision <= revision);
    if (due.length === 0) return;
    this.waiters = this.waiters.filter((w) => w.revision > revision);
    for (const w of due) {
      if (w.timer !== undefined) clearTimeout(w.timer);
      if (w.id === undefined) {
        w.settle(undefined);
        continue;
      }
      const reg = this.registrations.get(w.id);
      if (reg === undefined) {
        w.settle(undefined); // withdrawn meanwhile
        continue;
      }
      const reason = refusalFor(refused, reg) ?? general;
      if (reason === undefined) {
        w.settle(undefined);
        continue;
      }
      // The server holds the set without it already; forget it here too (no resend needed).
      this.registrations.delete(w.id);
      w.settle(
        new RegistrationError(
          this.opts.address,
          reg.service,
          reg.address,
          'refused',
          `the control server refused it: ${reason}`,
        ),
      );
    }
  }

  // ---------------------------------------------------------------------------------------------

  private report(err: unknown, remember = true): void {
    const e = err instanceof Error ? err : new Error(String(err));
    if (remember) this.lastError = { message: e.message, at: Date.now() };
    try {
      this.sink?.error(e);
    } catch {
      // the mesh's problem, not a reason to break the stream
    }
  }

  close(): Promise<void> {
    if (this.closePromise === undefined) this.closePromise = this.doClose();
    return this.closePromise;
  }

  private async doClose(): Promise<void> {
    this.closing = true;
    if (this.warmingTimer !== undefined) clearTimeout(this.warmingTimer);
    if (this.reconnectTimer !== undefined) {
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = undefined;
    }
    if (this.registrations.size > 0) {
      this.registrations.clear();
      const revision = ++this.revision;
      if (this.sendRegistrations(revision) && this.connected) await this.waitForRevision(revision, CLOSE_WITHDRAW_MS);
    }
    for (const w of this.waiters.splice(0)) {
      if (w.timer !== undefined) clearTimeout(w.timer);
      w.settle(
        new RegistrationError(this.opts.address, '(any)', '(any)', 'closed', 'the discovery source was closed first'),
      );
    }
    const call = this.call;
    const client = this.client;
    this.call = undefined;
    this.client = undefined;
    this.connected = false;
    if (call !== undefined) {
      try {
        call.end();
        call.cancel();
      } catch {
        // already over
      }
    }
    try {
      client?.close();
    } catch {
      // already closed
    }
    this.closed = true;
    if (this.cacheWriting !== undefined) await this.cacheWriting;
  }
}

/**
 * The server's reason for refusing `reg`, from refusals named `<service>/<address>` (the server may
 * cut long parts, so a refusal whose parts are long prefixes of the registration's matches too).
 */
function refusalFor(refused: ReadonlyMap<string, string>, reg: Registration): string | undefined {
  const exact = refused.get(`${reg.service}/${reg.address}`);
  if (exact !== undefined || refused.size === 0) return exact;
  const cut = (part: string, full: string) => part === full || (part.length >= 64 && full.startsWith(part));
  for (const [name, reason] of refused) {
    const slash = name.indexOf('/');
    if (slash < 0) continue;
    if (cut(name.slice(0, slash), reg.service) && cut(name.slice(slash + 1), reg.address)) return reason;
  }
  return undefined;
}

function routesTo(config: ServiceConfig | undefined, names: ReadonlySet<string>): boolean {
  const routes = (config as { routes?: unknown } | undefined)?.routes;
  if (!Array.isArray(routes)) return false;
  for (const r of routes) {
    const backends = (r as { backends?: unknown } | null)?.backends;
    if (!Array.isArray(backends)) continue;
    for (const b of backends) if (names.has((b as { service?: unknown } | null)?.service as string)) return true;
  }
  return false;
}

function addRejection(rejected: Rejection[], name: string, reason: string): void {
  const shown = shortName(name);
  const existing = rejected.find((r) => r.name === shown);
  if (existing !== undefined) existing.reason = `${existing.reason}; ${reason}`;
  else rejected.push({ name: shown, reason });
}

function copyRegistration(r: Registration): Registration {
  const out: Registration = { service: r?.service, address: r?.address };
  if (r?.zone !== undefined) out.zone = r.zone;
  if (r?.weight !== undefined) out.weight = r.weight;
  if (r?.metadata !== undefined) out.metadata = { ...r.metadata };
  return out;
}
