/**
 * `MeshChannel`: the grpc-js channel of a client built for a `meshlet:///<service>` target
 * (through the `channelFactoryOverride` client option). It never connects anywhere itself: each
 * call it creates runs through the mesh, and each attempt goes out on a plain grpc-js channel to
 * the picked endpoint's address, made on first use and kept per address until the address leaves
 * the mesh, the client closes or the mesh closes. grpc-js shares the TCP connections of channels
 * with the same address, credentials and options, so many clients of one service share them too.
 *
 * grpc-js's own retries are off on those channels (`grpc.enable_retries: 0`): the mesh retries,
 * on the service's budget. With secure credentials they verify each endpoint's certificate against
 * the service's name, not the address dialled (`tls.ts`), and a failed handshake ends the attempt
 * with a status naming the endpoint and the name checked.
 */
import {
  Channel as GrpcChannel,
  connectivityState as ConnectivityState,
  status as Status,
  type ChannelCredentials,
  type ChannelInterface,
  type ChannelOptions,
} from '@grpc/grpc-js';
import type { Endpoint } from '@meshlet/core';
import { MeshGrpcCall } from './call.js';
import type { Deadline, LowLevelCall, ParentCall } from './grpc-types.js';
import { MethodInfo } from './method.js';
import type { MeshGrpc } from './state.js';
import { ConnectWatch, tlsName, type ConnectInfo, type TlsName } from './tls.js';

/** Distinct method paths kept parsed per channel (a dynamic client could make up any number). */
const METHOD_CACHE = 1024;
/** The longest delay a Node timer takes (a longer one fires at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

let nextCallNumber = 1;

type ChannelRef = ReturnType<ChannelInterface['getChannelzRef']>;

/**
 * A plain grpc-js channel to one endpoint. A call made while it is not READY may meet the
 * connection's (TLS) handshake: that call is watched, so a handshake failure ends it with a status
 * naming the endpoint (`ConnectWatch`). A call made on a READY channel goes out on the connection
 * already verified, unwrapped.
 */
export class EndpointChannel extends GrpcChannel {
  constructor(
    target: string,
    credentials: ChannelCredentials,
    options: ChannelOptions,
    private readonly info: ConnectInfo,
  ) {
    super(target, credentials, options);
  }

  override createCall(
    method: string,
    deadline: Deadline,
    host: string | null | undefined,
    parentCall: ParentCall,
    propagateFlags: number | null | undefined,
  ): LowLevelCall {
    const call = super.createCall(method, deadline, host, parentCall, propagateFlags);
    if (super.getConnectivityState(false) === ConnectivityState.READY) return call;
    return new ConnectWatch(call, this.info);
  }
}

export class MeshChannel implements ChannelInterface {
  private readonly endpoints = new Map<string, EndpointChannel>();
  /** Calls whose committed stream is still open (the engine is done with them). */
  readonly live = new Set<MeshGrpcCall>();
  private readonly methods = new Map<string, MethodInfo>();
  private readonly endpointOptions: ChannelOptions;
  /** The name endpoint certificates are verified against; undefined with insecure credentials. */
  private readonly tls: TlsName | undefined;
  /** `:authority` of calls made without the `host` option: `grpc.default_authority`, else the service name. */
  private readonly authority: string;
  private closed = false;
  private readonly ref: ChannelRef;
  /**
   * The pending `watchConnectivityState` calls, each a function that looks at the state again:
   * run when an endpoint channel's state changes, when an endpoint channel opens or closes, and
   * when the mesh's config changes.
   */
  private readonly watches = new Set<() => void>();

  constructor(
    readonly state: MeshGrpc,
    readonly service: string,
    private readonly target: string,
    private readonly credentials: ChannelCredentials,
    options: ChannelOptions,
  ) {
    this.endpointOptions = { ...options, 'grpc.enable_retries': 0 };
    const authority = options['grpc.default_authority'];
    this.authority = typeof authority === 'string' && authority !== '' ? authority : service;
    if (credentials._isSecure()) {
      // grpc-js would verify against the host of the target, the endpoint's IP address.
      this.tls = tlsName(service, options);
      this.endpointOptions['grpc.ssl_target_name_override'] = this.tls.name;
    }
    this.ref = { kind: 'channel', id: -1, name: target } as ChannelRef;
    state.channels.add(this);
  }

  createCall(
    method: string,
    deadline: Deadline,
    host: string | null | undefined,
    parentCall: ParentCall,
    propagateFlags: number | null | undefined,
  ): LowLevelCall {
    if (this.closed) throw this.shutDown();
    let info = this.methods.get(method);
    if (info === undefined) {
      info = new MethodInfo(method);
      if (this.methods.size < METHOD_CACHE) this.methods.set(method, info);
    }
    const deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
    return new MeshGrpcCall(
      this,
      info,
      deadlineMs,
      host ?? this.authority,
      parentCall,
      propagateFlags,
      nextCallNumber++,
    );
  }

  /** The grpc-js channel to one endpoint (made on first use). */
  endpointChannel(ep: Endpoint): GrpcChannel {
    return this.endpoints.get(ep.address) ?? this.openEndpoint(ep.address, ep.host, ep.port);
  }

  private openEndpoint(address: string, host: string, port: number): EndpointChannel {
    const info: ConnectInfo = { service: this.service, address, tls: this.tls };
    const ch = new EndpointChannel(endpointTarget(host, port), this.credentials, this.endpointOptions, info);
    this.endpoints.set(address, ch);
    if (this.watches.size > 0) this.recheckWatches();
    return ch;
  }

  /** Looks at the state again for every pending `watchConnectivityState`. */
  recheckWatches(): void {
    for (const check of [...this.watches]) check();
  }

  /** The address left the mesh: its channel goes (calls still on it finish). */
  dropEndpoint(address: string): void {
    const ch = this.endpoints.get(address);
    if (ch === undefined) return;
    this.endpoints.delete(address);
    ch.close();
    if (this.watches.size > 0) this.recheckWatches();
  }

  /**
   * The mesh closed: streams still open are cut with UNAVAILABLE (`MESHLET_ERR_CLOSED`, after the
   * calls the engine tracks have had `close()`'s grace period), then every endpoint channel closes.
   */
  meshClosed(): void {
    for (const call of this.live) {
      call.cancelWithStatus(
        Status.UNAVAILABLE,
        `MESHLET_ERR_CLOSED: service "${this.service}" method ${call.info.short}: the mesh was closed while the stream was open`,
      );
    }
    this.live.clear();
    this.closeEndpoints();
  }

  /** Closes every endpoint channel (the client or the mesh closed). */
  closeEndpoints(): void {
    for (const ch of this.endpoints.values()) ch.close();
    this.endpoints.clear();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.closeEndpoints();
    this.state.channels.delete(this);
    this.recheckWatches();
  }

  /** grpc-js's own words for a closed channel, plus which one and what to do. */
  private shutDown(): Error {
    return new Error(
      `Channel has been shut down: the client of ${this.target} was closed (client.close()); build a new client to call it again`,
    );
  }

  getTarget(): string {
    return this.target;
  }

  /**
   * READY when a channel to any of the service's endpoints is; CONNECTING while one connects;
   * TRANSIENT_FAILURE when the service has no endpoint, or is unknown once the mesh has its config;
   * IDLE otherwise. `tryToConnect` opens channels to the service's endpoints.
   */
  getConnectivityState(tryToConnect: boolean): ConnectivityState {
    if (this.closed) return ConnectivityState.SHUTDOWN;
    const mesh = this.state.mesh;
    if (mesh.isClosed) return ConnectivityState.SHUTDOWN;
    const addresses = mesh.endpointAddresses(this.service);
    if (addresses === undefined) {
      if (!mesh.isReady) return tryToConnect ? ConnectivityState.CONNECTING : ConnectivityState.IDLE;
      return ConnectivityState.TRANSIENT_FAILURE;
    }
    if (addresses.length === 0) return ConnectivityState.TRANSIENT_FAILURE;
    let connecting = false;
    let idle = false;
    for (const address of addresses) {
      let ch = this.endpoints.get(address);
      if (ch === undefined) {
        if (!tryToConnect) {
          idle = true;
          continue;
        }
        const at = address.lastIndexOf(':');
        const host = address.slice(0, at).replace(/^\[|\]$/g, '');
        ch = this.openEndpoint(address, host, Number(address.slice(at + 1)));
      }
      const s = ch.getConnectivityState(tryToConnect);
      if (s === ConnectivityState.READY) return s;
      if (s === ConnectivityState.CONNECTING) connecting = true;
      else if (s === ConnectivityState.IDLE) idle = true;
    }
    if (connecting) return ConnectivityState.CONNECTING;
    return idle ? ConnectivityState.IDLE : ConnectivityState.TRANSIENT_FAILURE;
  }

  /**
   * Calls back once the state is no longer `currentState`, or with an error at `deadline`. Event
   * driven: the state is looked at again when one of the endpoint channels changes state (one
   * grpc-js watch per endpoint channel and pending call), when an endpoint channel opens or
   * closes, when the mesh's config changes, and when this channel or the mesh closes.
   */
  watchConnectivityState(
    currentState: ConnectivityState,
    deadline: Date | number,
    callback: (error?: Error) => void,
  ): void {
    if (this.closed) throw this.shutDown();
    const until = deadline instanceof Date ? deadline.getTime() : deadline;
    const watched = new Set<GrpcChannel>();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const end = (error?: Error): void => {
      if (!this.watches.delete(check)) return;
      if (timer !== undefined) clearTimeout(timer);
      callback(error);
    };
    const check = (): void => {
      if (!this.watches.has(check)) return;
      if (this.getConnectivityState(false) !== currentState) {
        end();
        return;
      }
      for (const ch of this.endpoints.values()) {
        if (watched.has(ch)) continue;
        watched.add(ch);
        const onChange = (): void => {
          watched.delete(ch);
          check();
        };
        try {
          ch.watchConnectivityState(ch.getConnectivityState(false), until, onChange);
        } catch {
          // Closed in the meantime: its removal from `endpoints` re-checks.
          watched.delete(ch);
        }
      }
    };
    const onDeadline = (): void => {
      const left = until - Date.now();
      if (left > 0) timer = setTimeout(onDeadline, Math.min(left, MAX_TIMER_MS));
      else end(new Error('Deadline passed without connectivity state change'));
    };
    this.watches.add(check);
    if (until !== Infinity) timer = setTimeout(onDeadline, Math.max(0, Math.min(until - Date.now(), MAX_TIMER_MS)));
    // grpc-js calls back asynchronously, even when the state has already changed.
    process.nextTick(check);
  }

  getChannelzRef(): ChannelRef {
    return this.ref;
  }
}

/** grpc-js target naming one address: `ipv4:` / `ipv6:` skip name resolution; a host name goes through DNS. */
export function endpointTarget(host: string, port: number): string {
  if (host.includes(':')) return `ipv6:[${host}]:${port}`;
  if (/^\d+\.\d+\.\d+\.\d+$/.test(host)) return `ipv4:${host}:${port}`;
  return `dns:${host}:${port}`;
}
