/**
 * `MeshChannel`: the grpc-js channel of a client built for a `meshlet:///<service>` target
 * (through the `channelFactoryOverride` client option). It never connects anywhere itself: each
 * call it creates runs through the mesh, and each attempt goes out on a plain grpc-js channel to
 * the picked endpoint's address, made on first use and kept per address until the address leaves
 * the mesh, the client closes or the mesh closes. grpc-js shares the TCP connections of channels
 * with the same address, credentials and options, so many clients of one service share them too.
 *
 * grpc-js's own retries are off on those channels (`grpc.enable_retries: 0`): the mesh retries,
 * on the service's budget.
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

/** Distinct method paths kept parsed per channel (a dynamic client could make up any number). */
const METHOD_CACHE = 1024;
/** How often `watchConnectivityState` looks again (the state is derived from several channels). */
const WATCH_INTERVAL_MS = 20;

let nextCallNumber = 1;

type ChannelRef = ReturnType<ChannelInterface['getChannelzRef']>;

export class MeshChannel implements ChannelInterface {
  private readonly endpoints = new Map<string, GrpcChannel>();
  /** Calls whose committed stream is still open (the engine is done with them). */
  readonly live = new Set<MeshGrpcCall>();
  private readonly methods = new Map<string, MethodInfo>();
  private readonly endpointOptions: ChannelOptions;
  private closed = false;
  private readonly ref: ChannelRef;

  constructor(
    readonly state: MeshGrpc,
    readonly service: string,
    private readonly target: string,
    private readonly credentials: ChannelCredentials,
    options: ChannelOptions,
  ) {
    this.endpointOptions = { ...options, 'grpc.enable_retries': 0 };
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
    return new MeshGrpcCall(this, info, deadlineMs, host ?? this.service, parentCall, propagateFlags, nextCallNumber++);
  }

  /** The grpc-js channel to one endpoint (made on first use). */
  endpointChannel(ep: Endpoint): GrpcChannel {
    let ch = this.endpoints.get(ep.address);
    if (ch === undefined) {
      ch = new GrpcChannel(endpointTarget(ep.host, ep.port), this.credentials, this.endpointOptions);
      this.endpoints.set(ep.address, ch);
    }
    return ch;
  }

  /** The address left the mesh: its channel goes (calls still on it finish). */
  dropEndpoint(address: string): void {
    const ch = this.endpoints.get(address);
    if (ch === undefined) return;
    this.endpoints.delete(address);
    ch.close();
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
    const stats = mesh.hasService(this.service) ? mesh.stats().services[this.service] : undefined;
    if (stats === undefined) {
      if (!mesh.isReady) return tryToConnect ? ConnectivityState.CONNECTING : ConnectivityState.IDLE;
      return ConnectivityState.TRANSIENT_FAILURE;
    }
    if (stats.endpoints.length === 0) return ConnectivityState.TRANSIENT_FAILURE;
    let connecting = false;
    let idle = false;
    for (const ep of stats.endpoints) {
      let ch = this.endpoints.get(ep.address);
      if (ch === undefined) {
        if (!tryToConnect) {
          idle = true;
          continue;
        }
        const at = ep.address.lastIndexOf(':');
        const host = ep.address.slice(0, at).replace(/^\[|\]$/g, '');
        ch = new GrpcChannel(
          endpointTarget(host, Number(ep.address.slice(at + 1))),
          this.credentials,
          this.endpointOptions,
        );
        this.endpoints.set(ep.address, ch);
      }
      const s = ch.getConnectivityState(tryToConnect);
      if (s === ConnectivityState.READY) return s;
      if (s === ConnectivityState.CONNECTING) connecting = true;
      else if (s === ConnectivityState.IDLE) idle = true;
    }
    if (connecting) return ConnectivityState.CONNECTING;
    return idle ? ConnectivityState.IDLE : ConnectivityState.TRANSIENT_FAILURE;
  }

  watchConnectivityState(
    currentState: ConnectivityState,
    deadline: Date | number,
    callback: (error?: Error) => void,
  ): void {
    if (this.closed) throw this.shutDown();
    const until = deadline instanceof Date ? deadline.getTime() : deadline;
    const check = (): void => {
      if (this.getConnectivityState(false) !== currentState) {
        callback();
        return;
      }
      const left = until - Date.now();
      if (left <= 0) {
        callback(new Error('Deadline passed without connectivity state change'));
        return;
      }
      setTimeout(check, Math.min(WATCH_INTERVAL_MS, left));
    };
    setTimeout(check, 0);
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
