/**
 * The gRPC side of one Mesh: its protocol object, the meshlet channels built for it, and the
 * mesh listener that closes endpoint channels when their address leaves the mesh or the mesh
 * closes. Made on the first `meshGrpcOptions(mesh)` for that mesh and kept beside it (a WeakMap),
 * so two meshes in one process share nothing.
 */
import {
  Channel as GrpcChannel,
  type ChannelCredentials,
  type ChannelInterface,
  type ChannelOptions,
} from '@grpc/grpc-js';
import { TimerQueue, systemClock, type Endpoint, type Mesh, type Protocol } from '@meshlet/core';
import type { EndpointAttempt } from './attempt.js';
import type { MeshGrpcCall } from './call.js';
import { MeshChannel } from './channel.js';
import { createGrpcProtocol } from './protocol.js';
import { isMeshletTarget, serviceOfTarget } from './target.js';

export const CALL_DURATION = 'rpc.client.call.duration';

export class MeshGrpc {
  readonly protocol: Protocol<MeshGrpcCall, EndpointAttempt> = createGrpcProtocol();
  readonly channels = new Set<MeshChannel>();
  /** Deadlines of committed calls still open, under one timer (deadline.ts). */
  readonly deadlines = new TimerQueue(systemClock);
  /** `channelFactoryOverride`: a meshlet channel for `meshlet:` targets, a plain grpc-js one otherwise. */
  readonly factory: (target: string, credentials: ChannelCredentials, options: ChannelOptions) => ChannelInterface;

  constructor(readonly mesh: Mesh) {
    this.factory = (target, credentials, options) =>
      isMeshletTarget(target)
        ? new MeshChannel(this, serviceOfTarget(target), target, credentials, options)
        : new GrpcChannel(target, credentials, options);
    mesh.subscribe({
      endpointRemoved: (_service, ep) => {
        if (mesh.hasEndpoint(ep.address)) return;
        for (const ch of this.channels) ch.dropEndpoint(ep.address);
      },
      configChanged: () => {
        for (const ch of this.channels) ch.recheckWatches();
      },
      closed: () => {
        for (const ch of this.channels) ch.meshClosed();
      },
    });
  }

  /** One finished call's `rpc.client.call.duration` point (when a meter provider is registered). */
  recordCall(call: MeshGrpcCall, code: number, ep: Endpoint | undefined, ms: number): void {
    const t = this.mesh.telemetry;
    if (!t.metricsOn) return;
    t.duration(CALL_DURATION).record(ms / 1000, call.info.attributes(call.channel.service, code, ep));
  }
}
