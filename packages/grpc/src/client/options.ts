/**
 * `meshGrpcOptions(mesh)`: the grpc-js client options that put a client's `meshlet:///<service>`
 * calls through a Mesh. Nothing is registered with grpc-js (no resolver, no load-balancing
 * policy): the options carry a channel factory bound to this mesh.
 */
import type { ClientOptions } from '@grpc/grpc-js';
import { MeshConfigError, type Mesh } from '@meshlet/core';
import { MeshGrpc } from './state.js';

const states = new WeakMap<Mesh, MeshGrpc>();

/**
 * grpc-js client options linking a client to `mesh`: pass them (spread beside your own) to any
 * generated or dynamic client built for a `meshlet:///<service>` target. Other targets get a
 * plain grpc-js channel.
 */
export function meshGrpcOptions(mesh: Mesh): ClientOptions {
  if (typeof mesh !== 'object' || mesh === null || typeof (mesh as Partial<Mesh>).call !== 'function') {
    throw new MeshConfigError([{ path: 'mesh', message: 'expected a Mesh from createMesh()' }]);
  }
  let state = states.get(mesh);
  if (state === undefined) {
    state = new MeshGrpc(mesh);
    states.set(mesh, state);
  }
  return { channelFactoryOverride: state.factory };
}
