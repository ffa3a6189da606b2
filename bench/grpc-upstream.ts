/**
 * One upstream gRPC server (a separate process, so its CPU is not the client's, as bench/upstream.ts
 * for HTTP): a plain grpc-js `Server` on 127.0.0.1, port 0, serving `bench.Bench` with raw Buffer
 * messages (no protobuf: the figures are the transport's and meshlet's, not a codec's):
 *
 * - `/bench.Bench/Unary`: answers every request with a fixed 1 KiB message (the HTTP bench's body size);
 * - `/bench.Bench/Stream`: answers with STREAM_MESSAGES messages of 1 KiB, then OK.
 *
 * Reports its port to the orchestrator over IPC.
 */
import * as grpc from '@grpc/grpc-js';
import { BENCH_SERVICE, RESPONSE, STREAM_MESSAGES } from './grpc-common.ts';

const server = new grpc.Server();
server.addService(BENCH_SERVICE, {
  Unary(_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) {
    callback(null, RESPONSE);
  },
  Stream(call: grpc.ServerWritableStream<Buffer, Buffer>) {
    for (let i = 0; i < STREAM_MESSAGES; i++) call.write(RESPONSE);
    call.end();
  },
});

server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err !== null) throw err;
  process.send?.({ type: 'listening', port });
});

const stop = (): void => {
  server.forceShutdown();
  process.exit(0);
};
process.on('disconnect', stop);
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
