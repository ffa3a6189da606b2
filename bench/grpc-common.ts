/**
 * What the gRPC benchmark's servers and clients share: the `bench.Bench` service with raw Buffer
 * messages (identity serialisers, so neither side pays for a codec and meshlet's cost is not
 * diluted by one), and the one call loop both clients run, so that raw grpc-js and meshlet differ
 * only in the `grpc.Client` they are given.
 */
import * as grpc from '@grpc/grpc-js';
import type { BenchClient } from './lib/types.ts';

/** Messages per server-streaming call. */
export const STREAM_MESSAGES = 10;
/** The request message: a few bytes, as a lookup by key would send. */
export const REQUEST = Buffer.from('meshlet-bench-request');
/** Every response message: 1 KiB, the HTTP bench's body size. */
export const RESPONSE = Buffer.alloc(1024, 'meshlet-bench ');

export const UNARY_PATH = '/bench.Bench/Unary';
export const STREAM_PATH = '/bench.Bench/Stream';

const identity = (b: Buffer): Buffer => b;

export const BENCH_SERVICE: grpc.ServiceDefinition = {
  Unary: {
    path: UNARY_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
  Stream: {
    path: STREAM_PATH,
    requestStream: false,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

/** The kinds of call a client process runs (the runner's `path` argument). */
export type CallKind = 'unary' | 'stream';

export function callKind(arg: string): CallKind {
  if (arg === 'unary' || arg === 'stream') return arg;
  throw new Error(`grpc bench client: expected the call kind "unary" or "stream", got ${JSON.stringify(arg)}`);
}

/**
 * The benchmark's call through `client`: one unary call (the 1 KiB answer checked for size), or one
 * server-streaming call read to its end (STREAM_MESSAGES messages checked). `close` runs after the
 * client is closed.
 */
export function grpcBenchClient(client: grpc.Client, kind: CallKind, close: () => Promise<void>): BenchClient {
  const send =
    kind === 'unary'
      ? (): Promise<void> =>
          new Promise<void>((resolve, reject) => {
            client.makeUnaryRequest(UNARY_PATH, identity, identity, REQUEST, (err, response) => {
              if (err !== null) reject(err);
              else if (response === undefined || response.length !== RESPONSE.length)
                reject(new Error(`unexpected response of ${response?.length ?? 0} bytes`));
              else resolve();
            });
          })
      : (): Promise<void> =>
          new Promise<void>((resolve, reject) => {
            const call = client.makeServerStreamRequest(STREAM_PATH, identity, identity, REQUEST);
            let messages = 0;
            call.on('data', () => {
              messages++;
            });
            call.on('error', reject);
            call.on('end', () => {
              if (messages === STREAM_MESSAGES) resolve();
              else reject(new Error(`stream ended after ${messages} of ${STREAM_MESSAGES} messages`));
            });
          });
  return {
    send,
    async close() {
      client.close();
      await close();
    },
  };
}
