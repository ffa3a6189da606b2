/**
 * The meshlet control server: loads the mesh config from a file (and keeps watching it), resolves
 * the services that use `dns`, collects self-registrations, and pushes the result to every
 * connected process over one gRPC bidirectional stream per process (meshlet.v1 ADS, state of the
 * world plus incremental responses, see packages/discovery/proto/meshlet/v1/discovery.proto).
 *
 * Flow: a config file save is read `fileDebounceMs` after its last event (2 ms after a rename into
 * place, an atomic save, which is complete when its event arrives) and rebuilt at once; DNS
 * answers, registrations and withdrawals schedule a rebuild, coalesced over `debounceMs`. A rebuild
 * that changes a resource type bumps the snapshot version and sends that type to every subscribed
 * stream: the change alone to streams that ACKed the previous version, the whole set to the others,
 * each encoded once.
 */
import * as grpc from '@grpc/grpc-js';
import { DnsWatcher, type DnsResolverLike, type MeshConfig } from '@meshlet/core';
import type { Logger } from 'pino';
import { pino } from 'pino';
import { AdminServer, type ClientView, type ConfigView, type EndpointsView } from './admin.js';
import { loadConfigFile } from './config-file.js';
import { FileWatch, statKey } from './file-watch.js';
import { buildResources, type DnsEndpoints } from './resources.js';
import { SnapshotBuilder, SERVED_TYPES } from './snapshot.js';
import { MemoryStore, type ControlStore, type StoredConfig } from './store.js';
import { ClientStream, type StreamHost } from './stream.js';
import { serverService, STREAM_METHOD } from './wire.js';

export interface ControlServerOptions {
  /** The mesh config file (YAML or JSON, `{ services: { … } }`). Watched: edits are pushed. */
  configPath: string;
  /** gRPC listen host. Default `'0.0.0.0'`. */
  host?: string;
  /** gRPC port. Default 15010; 0 picks a free port. */
  port?: number;
  /** Admin HTTP host. Default: `host`. */
  adminHost?: string;
  /** Admin HTTP port. Default 15011; 0 picks a free port. */
  adminPort?: number;
  /** pino logger. Default: JSON lines on stdout at level `info`. */
  logger?: Logger;
  /** Where state lives. Default: a new `MemoryStore`. */
  store?: ControlStore;
  /** Registration and DNS changes within this many ms are pushed as one version. Default 50. */
  debounceMs?: number;
  /**
   * The config file is re-read this long after the last file-system event on it (an in-place save
   * may take several writes); saves within it make one version. A file renamed into place (an atomic
   * save) is complete when its event arrives and is read after 2 ms (or this, if shorter). Default 20.
   */
  fileDebounceMs?: number;
  /** A dropped stream's registrations are withdrawn after this many ms unless its node re-registers. Default 5000. */
  registrationGraceMs?: number;
  /** A client that has not ACKed the current version this long after it was sent counts as behind. Default 2000. */
  behindGraceMs?: number;
  /** Stat the config file this often, besides fs.watch. Default 2000. */
  filePollMs?: number;
  /** Most registrations one node may hold. Default 1000. */
  maxRegistrationsPerNode?: number;
  /** DNS resolver for `dns` services. Default: the system's (`dns.promises.Resolver`). */
  dnsResolver?: DnsResolverLike;
  /** stop() waits this long for streams to close before forcing them. Default 5000. */
  shutdownTimeoutMs?: number;
}

export interface ListenAddress {
  host: string;
  port: number;
}

export interface ControlServer {
  /** Loads the config (throws `MeshConfigError` / `ConfigFileError` naming file and path), then listens. */
  start(): Promise<void>;
  /** Stops accepting, ends every stream, closes both ports, stops watching. Idempotent. */
  stop(): Promise<void>;
  /** gRPC address (after start). */
  readonly address: ListenAddress;
  /** Admin HTTP address (after start). */
  readonly adminAddress: ListenAddress;
  /** Current snapshot version ('0' before the first). */
  readonly version: string;
}

export function createControlServer(options: ControlServerOptions): ControlServer {
  return new ControlServerImpl(options);
}

type Phase = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

class ControlServerImpl implements ControlServer, StreamHost {
  readonly logger: Logger;
  readonly store: ControlStore;
  readonly snapshot: SnapshotBuilder;
  readonly registrationGraceMs: number;
  readonly maxRegistrationsPerNode: number;
  private readonly opts: Required<
    Pick<
      ControlServerOptions,
      | 'host'
      | 'port'
      | 'adminPort'
      | 'debounceMs'
      | 'fileDebounceMs'
      | 'behindGraceMs'
      | 'filePollMs'
      | 'shutdownTimeoutMs'
    >
  > & { adminHost: string; configPath: string };
  private phase: Phase = 'new';
  private grpcServer: grpc.Server | undefined;
  private admin: AdminServer | undefined;
  private fileWatch: FileWatch | undefined;
  private boundPort: number | undefined;
  private adminBound: ListenAddress | undefined;
  private readonly streams = new Map<string, ClientStream>();
  private nextStreamId = 1;
  private rebuildTimer: NodeJS.Timeout | undefined;
  private unwatchStore: (() => void) | undefined;
  private lastGoodText: string | undefined;
  private lastReloadError: { message: string; at: number } | undefined;
  private reloading: Promise<void> | undefined;
  private reloadAgain = false;
  /** service → watcher, for services with `dns`. */
  private readonly dnsWatchers = new Map<string, { key: string; watcher: DnsWatcher }>();
  private readonly dnsResults = new Map<string, DnsEndpoints>();
  /** nodeId → the stream whose registrations are the node's current set. */
  private readonly registrationOwner = new Map<string, string>();
  /** nodeId → withdrawal timer after its owning stream ended. */
  private readonly withdrawTimers = new Map<string, NodeJS.Timeout>();

  constructor(private readonly options: ControlServerOptions) {
    const host = options.host ?? '0.0.0.0';
    this.opts = {
      configPath: options.configPath,
      host,
      port: options.port ?? 15010,
      adminHost: options.adminHost ?? host,
      adminPort: options.adminPort ?? 15011,
      debounceMs: options.debounceMs ?? 50,
      fileDebounceMs: options.fileDebounceMs ?? 20,
      behindGraceMs: options.behindGraceMs ?? 2000,
      filePollMs: options.filePollMs ?? 2000,
      shutdownTimeoutMs: options.shutdownTimeoutMs ?? 5000,
    };
    this.registrationGraceMs = options.registrationGraceMs ?? 5000;
    this.maxRegistrationsPerNode = options.maxRegistrationsPerNode ?? 1000;
    this.logger = options.logger ?? pino({ name: 'meshlet-control' });
    this.store = options.store ?? new MemoryStore();
    this.snapshot = new SnapshotBuilder(Date.now);
  }

  get address(): ListenAddress {
    if (this.boundPort === undefined) throw new Error('the control server is not listening; call start() first');
    return { host: this.opts.host, port: this.boundPort };
  }

  get adminAddress(): ListenAddress {
    if (this.adminBound === undefined) throw new Error('the control server is not listening; call start() first');
    return this.adminBound;
  }

  get version(): string {
    return this.snapshot.version;
  }

  // --- lifecycle ------------------------------------------------------------------------------

  async start(): Promise<void> {
    if (this.phase !== 'new') throw new Error(`start() called twice (the server is ${this.phase})`);
    this.phase = 'starting';
    try {
      // The file's state before its first read: the watch compares it when it starts (below).
      const readStat = await statKey(this.opts.configPath);
      const loaded = await loadConfigFile(this.opts.configPath);
      this.lastGoodText = loaded.text;
      // A config change has been debounced by the file watch already: rebuild at once. Registration
      // churn is coalesced over debounceMs.
      this.unwatchStore = this.store.watch((change) =>
        change.kind === 'config' ? this.flushRebuild() : this.scheduleRebuild(),
      );
      await this.store.setConfig(this.storedConfig(loaded.services));
      this.syncDnsWatchers(loaded.services);
      this.rebuildNow();

      this.admin = new AdminServer({
        running: () => this.phase === 'running',
        ready: () => this.phase === 'running' && this.boundPort !== undefined && this.store.getConfig() !== undefined,
        clients: () => this.clientViews(),
        config: () => this.configView(),
        endpoints: (service) => this.endpointsView(service),
      });
      const adminInfo = await this.admin.listen(this.opts.adminPort, this.opts.adminHost);
      this.adminBound = { host: this.opts.adminHost, port: adminInfo.port };

      this.grpcServer = new grpc.Server({
        // Bounds what one client can make us buffer; requests are small (subscriptions, ACKs, registrations).
        'grpc.max_receive_message_length': 4 * 1024 * 1024,
        'grpc.keepalive_time_ms': 30_000,
        'grpc.keepalive_timeout_ms': 10_000,
        'grpc.keepalive_permit_without_calls': 1,
      });
      this.grpcServer.addService(serverService, {
        [STREAM_METHOD]: (call: grpc.ServerDuplexStream<unknown, unknown>) => this.onStream(call),
      });
      this.boundPort = await new Promise<number>((resolve, reject) => {
        const target = this.opts.host.includes(':')
          ? `[${this.opts.host}]:${this.opts.port}`
          : `${this.opts.host}:${this.opts.port}`;
        this.grpcServer!.bindAsync(target, grpc.ServerCredentials.createInsecure(), (err, port) =>
          err ? reject(err) : resolve(port),
        );
      });

      this.fileWatch = new FileWatch(this.opts.configPath, {
        debounceMs: this.opts.fileDebounceMs,
        pollMs: this.opts.filePollMs,
        onChange: () => this.reload(),
        onWatchError: (err) =>
          this.logger.warn(
            { event: 'watch_error', path: this.opts.configPath, err: err.message },
            'fs.watch failed; polling the file instead',
          ),
      });
      // An edit between the first read and the watch's start is seen by the watch, which schedules
      // it with the full debounce (a file still being written in place is not read half-way).
      await this.fileWatch.start(readStat);
      this.phase = 'running';
      this.logger.info(
        {
          event: 'start',
          port: this.boundPort,
          adminPort: this.adminBound.port,
          config: this.opts.configPath,
          services: Object.keys(loaded.services).length,
          version: this.snapshot.version,
        },
        'control server listening',
      );
    } catch (err) {
      await this.teardown();
      this.phase = 'stopped';
      throw err;
    }
  }

  async stop(): Promise<void> {
    if (this.phase === 'stopped' || this.phase === 'stopping') return;
    this.phase = 'stopping';
    this.logger.info({ event: 'stopping', clients: this.streams.size }, 'control server stopping');
    await this.teardown();
    this.phase = 'stopped';
    this.logger.info({ event: 'stopped' }, 'control server stopped');
  }

  private async teardown(): Promise<void> {
    this.fileWatch?.close();
    this.fileWatch = undefined;
    if (this.rebuildTimer !== undefined) clearTimeout(this.rebuildTimer);
    this.rebuildTimer = undefined;
    for (const t of this.withdrawTimers.values()) clearTimeout(t);
    this.withdrawTimers.clear();
    for (const { watcher } of this.dnsWatchers.values()) watcher.stop();
    this.dnsWatchers.clear();
    this.unwatchStore?.();
    this.unwatchStore = undefined;
    const server = this.grpcServer;
    this.grpcServer = undefined;
    if (server !== undefined) {
      // tryShutdown stops accepting at once and waits for open calls; we end ours right after.
      const drained = new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      for (const s of this.streams.values()) s.end();
      let timer: NodeJS.Timeout | undefined;
      const forced = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          this.logger.warn(
            { event: 'forced_shutdown', clients: this.streams.size },
            'streams did not close in time; forcing',
          );
          server.forceShutdown();
          resolve();
        }, this.opts.shutdownTimeoutMs);
      });
      await Promise.race([drained, forced]);
      clearTimeout(timer);
    }
    this.streams.clear();
    await this.admin?.close();
    this.admin = undefined;
    await this.store.close();
  }

  // --- config ---------------------------------------------------------------------------------

  private storedConfig(services: MeshConfig['services']): StoredConfig {
    return {
      path: this.opts.configPath,
      services: services as unknown as Record<string, Record<string, unknown>>,
      loadedAt: Date.now(),
    };
  }

  /** Re-reads the file; serialised (a change during a reload triggers one more). */
  private reload(): void {
    if (this.reloading !== undefined) {
      this.reloadAgain = true;
      return;
    }
    this.reloading = this.reloadOnce()
      .catch((err: Error) => {
        // Not a config error (those are handled inside): a bug or a failing store. Keep serving.
        this.logger.error({ event: 'reload_error', err: err?.message }, 'config reload failed unexpectedly');
      })
      .finally(() => {
        this.reloading = undefined;
        if (this.reloadAgain && this.phase === 'running') {
          this.reloadAgain = false;
          this.reload();
        }
      });
  }

  private async reloadOnce(): Promise<void> {
    let loaded;
    try {
      loaded = await loadConfigFile(this.opts.configPath);
    } catch (err) {
      if (this.phase !== 'running') return;
      const message = (err as Error).message;
      if (this.lastReloadError?.message !== message) {
        this.logger.error(
          { event: 'reload_error', path: this.opts.configPath, err: message, version: this.snapshot.version },
          'config reload failed; still serving the last good config',
        );
      }
      this.lastReloadError = { message, at: Date.now() };
      return;
    }
    if (this.phase !== 'running') return;
    const hadError = this.lastReloadError !== undefined;
    this.lastReloadError = undefined;
    if (loaded.text === this.lastGoodText) {
      if (hadError)
        this.logger.info(
          { event: 'reload', path: this.opts.configPath, unchanged: true },
          'config file valid again (unchanged)',
        );
      return;
    }
    this.logger.info(
      { event: 'reload', path: this.opts.configPath, services: Object.keys(loaded.services).length },
      'config reloaded',
    );
    // DNS first, so the rebuild that setConfig triggers drops answers for names no longer wanted.
    const previous = this.store.getConfig();
    this.syncDnsWatchers(loaded.services);
    try {
      await this.store.setConfig(this.storedConfig(loaded.services));
    } catch (err) {
      this.logger.error(
        { event: 'store_error', op: 'setConfig', err: (err as Error).message },
        'could not store the reloaded config; still serving the last one',
      );
      if (previous !== undefined) this.syncDnsWatchers(previous.services as MeshConfig['services']);
      return;
    }
    this.lastGoodText = loaded.text;
  }

  // --- DNS ------------------------------------------------------------------------------------

  private syncDnsWatchers(services: MeshConfig['services']): void {
    const wanted = new Map<
      string,
      { name: string; port: number | undefined; type: 'A' | 'AAAA' | 'SRV'; refreshMs: number }
    >();
    for (const [name, svc] of Object.entries(services)) {
      const dns = (svc as { dns?: { name: string; port?: number; type: 'A' | 'AAAA' | 'SRV'; refreshMs?: number } })
        .dns;
      if (dns === undefined) continue;
      wanted.set(name, { name: dns.name, port: dns.port, type: dns.type, refreshMs: dns.refreshMs ?? 30_000 });
    }
    for (const [name, entry] of this.dnsWatchers) {
      const target = wanted.get(name);
      if (target === undefined || JSON.stringify(target) !== entry.key) {
        entry.watcher.stop();
        this.dnsWatchers.delete(name);
        this.dnsResults.delete(name);
      }
    }
    for (const [name, target] of wanted) {
      if (this.dnsWatchers.has(name)) continue;
      const watcher = new DnsWatcher(name, target, {
        ...(this.options.dnsResolver !== undefined ? { resolver: this.options.dnsResolver } : {}),
        onEndpoints: (endpoints) => {
          if (this.dnsWatchers.get(name)?.watcher !== watcher) return;
          this.dnsResults.set(
            name,
            endpoints.map((e) => ({ address: e.address, weight: e.weight })),
          );
          this.logger.info(
            { event: 'dns', service: name, dnsName: target.name, endpoints: endpoints.length },
            'DNS answer changed',
          );
          this.scheduleRebuild();
        },
        onError: (err) => {
          // The admin view reads the watcher's lastError, which the next good lookup clears (even when
          // its answer is unchanged and onEndpoints is not called).
          if (this.dnsWatchers.get(name)?.watcher !== watcher) return;
          this.logger.warn(
            { event: 'dns_error', service: name, dnsName: target.name, err: err.message },
            'DNS resolution failed; keeping the last good endpoints',
          );
        },
      });
      this.dnsWatchers.set(name, { key: JSON.stringify(target), watcher });
      watcher.start();
    }
  }

  // --- snapshot -------------------------------------------------------------------------------

  scheduleRebuild(): void {
    if (this.rebuildTimer !== undefined || this.phase === 'stopping' || this.phase === 'stopped') return;
    // Not a trailing debounce: the first change starts the window, so steady churn cannot starve pushes.
    this.rebuildTimer = setTimeout(() => {
      this.rebuildTimer = undefined;
      this.rebuildNow();
    }, this.opts.debounceMs);
    this.rebuildTimer.unref();
  }

  /** Rebuilds now, taking any scheduled rebuild with it. */
  private flushRebuild(): void {
    if (this.phase === 'stopping' || this.phase === 'stopped') return;
    if (this.rebuildTimer !== undefined) {
      clearTimeout(this.rebuildTimer);
      this.rebuildTimer = undefined;
    }
    // During start() the first build comes right after; no need to build twice.
    if (this.phase === 'running') this.rebuildNow();
  }

  private rebuildNow(): void {
    const config = this.store.getConfig();
    const services = config?.services ?? {};
    const set = buildResources(services, this.dnsResults, this.store.listRegistrations());
    const sources = new Map<string, object>();
    for (const name of Object.keys(services)) sources.set(name, services[name] as object);
    let changed;
    try {
      changed = this.snapshot.update(set, sources);
    } catch (err) {
      // Only a config the validator accepted gets here, so this is a bug; keep serving the last snapshot.
      this.logger.error(
        { event: 'snapshot_error', err: (err as Error).message },
        'could not encode the snapshot; still serving the previous one',
      );
      return;
    }
    if (changed.length === 0) return;
    this.logger.info(
      {
        event: 'snapshot',
        version: this.snapshot.version,
        types: changed,
        services: set.services.size,
        endpointSets: set.endpointSets.size,
        clients: this.streams.size,
      },
      'new snapshot',
    );
    for (const s of this.streams.values()) for (const t of changed) s.push(t);
  }

  // --- streams --------------------------------------------------------------------------------

  private onStream(call: grpc.ServerDuplexStream<unknown, unknown>): void {
    if (this.phase !== 'running') {
      call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'the control server is shutting down' });
      return;
    }
    const id = String(this.nextStreamId++);
    const stream = new ClientStream(id, call, this);
    this.streams.set(id, stream);
  }

  /** Called by a stream once it has ended (either side). */
  streamClosed(stream: ClientStream): void {
    if (this.streams.get(stream.id) !== stream) return;
    this.streams.delete(stream.id);
    this.storeWrite(this.store.removeClient(stream.id), 'removeClient');
    const nodeId = stream.nodeId;
    if (nodeId === undefined) return;
    if (this.registrationOwner.get(nodeId) !== stream.id) return;
    if (this.store.registrationsOfNode(nodeId).length === 0) {
      this.registrationOwner.delete(nodeId);
      return;
    }
    if (this.phase !== 'running') return;
    const timer = setTimeout(() => {
      this.withdrawTimers.delete(nodeId);
      if (this.registrationOwner.get(nodeId) !== stream.id) return;
      this.registrationOwner.delete(nodeId);
      this.applyRegistrations(nodeId, [], 'stream ended');
    }, this.registrationGraceMs);
    timer.unref();
    const old = this.withdrawTimers.get(nodeId);
    if (old !== undefined) clearTimeout(old);
    this.withdrawTimers.set(nodeId, timer);
  }

  /** A stream of `nodeId` sent its whole registration set. */
  registrationsFrom(
    stream: ClientStream,
    nodeId: string,
    regs: Parameters<ControlStore['replaceRegistrations']>[1],
  ): void {
    this.registrationOwner.set(nodeId, stream.id);
    const timer = this.withdrawTimers.get(nodeId);
    if (timer !== undefined) {
      clearTimeout(timer);
      this.withdrawTimers.delete(nodeId);
    }
    this.applyRegistrations(nodeId, regs, 'client');
  }

  private applyRegistrations(
    nodeId: string,
    regs: Parameters<ControlStore['replaceRegistrations']>[1],
    why: string,
  ): void {
    const before = new Map(this.store.registrationsOfNode(nodeId).map((r) => [`${r.service} ${r.address}`, r]));
    const after = new Map(regs.map((r) => [`${r.service} ${r.address}`, r]));
    // Keep the original `since` of registrations the node already had.
    const merged = [...after.entries()].map(([k, r]) => {
      const old = before.get(k);
      return old !== undefined ? { ...r, since: old.since } : r;
    });
    this.storeWrite(this.store.replaceRegistrations(nodeId, merged), 'replaceRegistrations');
    for (const [k, r] of after) {
      if (!before.has(k)) {
        this.logger.info(
          { event: 'registration', nodeId, service: r.service, address: r.address, zone: r.zone },
          'endpoint registered',
        );
      }
    }
    for (const [k, r] of before) {
      if (!after.has(k)) {
        this.logger.info(
          { event: 'withdrawal', nodeId, service: r.service, address: r.address, reason: why },
          'endpoint withdrawn',
        );
      }
    }
  }

  /** Logs a failed store write; the push path never waits on the store. */
  storeWrite(result: void | Promise<void>, op: string): void {
    if (result instanceof Promise) {
      result.catch((err: Error) =>
        this.logger.error({ event: 'store_error', op, err: err?.message }, 'a store write failed'),
      );
    }
  }

  // --- admin views ----------------------------------------------------------------------------

  private clientViews(): ClientView[] {
    const now = Date.now();
    const out: ClientView[] = [];
    for (const s of this.streams.values()) {
      const rec = this.store.getClient(s.id);
      if (rec === undefined) continue;
      const current: Record<string, string> = {};
      let behind = false;
      for (const t of rec.subscriptions) {
        const snap =
          SERVED_TYPES.find((x) => x === t) !== undefined
            ? this.snapshot.type(t as (typeof SERVED_TYPES)[number])
            : undefined;
        if (snap === undefined) continue;
        current[t] = snap.version;
        const since = Math.max(snap.changedAt, rec.connectedAt);
        if ((rec.acked[t] ?? '') !== snap.version && now - since > this.opts.behindGraceMs) behind = true;
      }
      out.push({
        nodeId: rec.nodeId,
        service: rec.service,
        zone: rec.zone,
        peer: rec.peer,
        userAgent: rec.userAgent,
        connectedAt: new Date(rec.connectedAt).toISOString(),
        subscriptions: [...rec.subscriptions],
        acked: { ...rec.acked },
        current,
        behind,
        lastNack:
          rec.lastNack === undefined
            ? null
            : {
                typeUrl: rec.lastNack.typeUrl,
                version: rec.lastNack.version,
                reason: rec.lastNack.reason,
                at: new Date(rec.lastNack.at).toISOString(),
              },
        registrations:
          this.registrationOwner.get(rec.nodeId) === s.id ? this.store.registrationsOfNode(rec.nodeId).length : 0,
      });
    }
    return out;
  }

  private configView(): ConfigView {
    const config = this.store.getConfig();
    const versions: Record<string, string> = {};
    for (const t of SERVED_TYPES) versions[t] = this.snapshot.type(t).version;
    const registered = new Set(this.store.listRegistrations().map((r) => r.service));
    return {
      path: this.opts.configPath,
      version: this.snapshot.version,
      versions,
      loadedAt: config === undefined ? null : new Date(config.loadedAt).toISOString(),
      services: config === undefined ? 0 : Object.keys(config.services).length,
      registeredServices: registered.size,
      lastReloadError:
        this.lastReloadError === undefined
          ? null
          : { message: this.lastReloadError.message, at: new Date(this.lastReloadError.at).toISOString() },
    };
  }

  private endpointsView(service: string): EndpointsView | undefined {
    const config = this.store.getConfig();
    const svc = config?.services[service];
    const served = this.snapshot.resources.endpointSets.get(service);
    if (svc === undefined && served === undefined) return undefined;
    const staticAddresses = new Set<string>();
    if (svc !== undefined && Array.isArray(svc.endpoints)) {
      for (const e of svc.endpoints as unknown[]) {
        if (typeof e === 'string') staticAddresses.add(e);
        else if (e !== null && typeof e === 'object' && typeof (e as { address?: unknown }).address === 'string') {
          staticAddresses.add((e as { address: string }).address);
        }
      }
    }
    const dnsAddresses = new Set((this.dnsResults.get(service) ?? []).map((e) => e.address));
    const regs = new Map(this.store.registrationsOf(service).map((r) => [r.address, r]));
    return {
      service,
      version: this.snapshot.type(SERVED_TYPES[1]).version,
      configured: svc !== undefined,
      dnsError: this.dnsWatchers.get(service)?.watcher.lastError?.message ?? null,
      endpoints: (served ?? []).map((e) => {
        const source = staticAddresses.has(e.address) ? 'static' : dnsAddresses.has(e.address) ? 'dns' : 'registration';
        const reg = source === 'registration' ? regs.get(e.address) : undefined;
        return {
          address: e.address,
          weight: e.weight,
          zone: e.zone,
          metadata: e.metadata,
          source,
          ...(reg !== undefined ? { nodeId: reg.nodeId } : {}),
        };
      }),
    };
  }
}
