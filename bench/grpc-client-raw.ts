/**
 * Baseline: raw grpc-js, one channel balancing `round_robin` over the three upstreams (an `ipv4:`
 * target listing them and `grpc.service_config`), grpc-js's defaults otherwise. Loaded by
 * bench/client-runner.ts; its `path` argument is the call kind (`unary` or `stream`).
 */
import * as grpc from '@grpc/grpc-js';
import { callKind, grpcBenchClient } from './grpc-common.ts';
import type { BenchClient, ClientSetupOptions } from './lib/types.ts';

export async function setup({ targets, path }: ClientSetupOptions): Promise<BenchClient> {
  const client = new grpc.Client(`ipv4:${targets.join(',')}`, grpc.credentials.createInsecure(), {
    'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
  });
  await waitForReady(client);
  return grpcBenchClient(client, callKind(path), async () => undefined);
}

export function waitForReady(client: grpc.Client): Promise<void> {
  return new Promise((resolve, reject) =>
    client.waitForReady(Date.now() + 10_000, (err) => (err === undefined ? resolve() : reject(err))),
  );
}
