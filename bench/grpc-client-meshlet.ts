/**
 * meshlet's gRPC client as an application writes it: a mesh with the service `bench` (protocol
 * `grpc`, the three upstreams, the default policies: P2C over peak EWMA, retries with a budget,
 * deadline, circuit breaker, outlier detection; no OpenTelemetry SDK) and a grpc-js client on
 * `meshlet:///bench` with `meshGrpcOptions(mesh)`. Loaded by bench/client-runner.ts; its `path`
 * argument is the call kind (`unary` or `stream`).
 */
import * as grpc from '@grpc/grpc-js';
import { createMesh } from '@meshlet/core';
import { meshGrpcOptions } from '@meshlet/grpc';
import { callKind, grpcBenchClient } from './grpc-common.ts';
import type { BenchClient, ClientSetupOptions } from './lib/types.ts';

export async function setup({ targets, path }: ClientSetupOptions): Promise<BenchClient> {
  const mesh = createMesh({ services: { bench: { protocol: 'grpc', endpoints: targets } } });
  const client = new grpc.Client('meshlet:///bench', grpc.credentials.createInsecure(), meshGrpcOptions(mesh));
  return grpcBenchClient(client, callKind(path), () => mesh.close());
}
