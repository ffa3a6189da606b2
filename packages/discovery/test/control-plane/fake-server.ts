// A hand-made control server for the client's tests: it speaks the protocol through the protocol
// module, records every request of every stream, and sends whatever responses a test crafts
// (including ones the real server would never send).
import * as grpc from '@grpc/grpc-js';
import { MeshConfigError, type ServiceConfig } from '@meshlet/core';
import type { DiscoverySink } from '@meshlet/core';
import {
  discoveryService,
  encodeResponse,
  type DiscoveryRequest,
  type DiscoveryResponseInput,
} from '../../src/protocol/index.js';

/** The real definition, except that a Buffer is sent as is (to send bytes that are not a message). */
const rawCapable = {
  StreamResources: {
    ...discoveryService.StreamResources,
    responseSerialize: (v: DiscoveryResponseInput | Buffer) => (Buffer.isBuffer(v) ? v : encodeResponse(v)),
  },
};

type Call = grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponseInput | Buffer>;

export class FakeStream {
  readonly requests: DiscoveryRequest[] = [];
  ended = false;
  private waiters: Array<{
    pred: (r: DiscoveryRequest) => boolean;
    resolve: (r: DiscoveryRequest) => void;
    from: number;
  }> = [];
  private cursor = 0;
  constructor(readonly call: Call) {
    call.on('data', (req: DiscoveryRequest) => {
      this.requests.push(req);
      this.waiters = this.waiters.filter((w) => {
        const i = this.requests.findIndex((r, j) => j >= w.from && w.pred(r));
        if (i < 0) return true;
        w.resolve(this.requests[i]);
        return false;
      });
    });
    call.on('error', () => {});
    call.on('end', () => {
      this.markEnded();
      try {
        call.end();
      } catch {
        // gone
      }
    });
    call.on('close', () => this.markEnded());
  }

  private endWaiters: Array<() => void> = [];

  private markEnded(): void {
    this.ended = true;
    for (const w of this.endWaiters.splice(0)) w();
  }

  /** Resolves once the client has ended the stream; rejects after `timeoutMs`. */
  untilEnded(timeoutMs = 5000): Promise<void> {
    if (this.ended) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the stream did not end within ${timeoutMs} ms`)), timeoutMs);
      this.endWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** The next request (after the ones already taken with `next`) that matches `pred`. */
  next(pred: (r: DiscoveryRequest) => boolean = () => true, timeoutMs = 5000): Promise<DiscoveryRequest> {
    const from = this.cursor;
    return new Promise<DiscoveryRequest>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(`no matching request within ${timeoutMs} ms; got ${JSON.stringify(this.requests.slice(from))}`),
          ),
        timeoutMs,
      );
      const done = (r: DiscoveryRequest) => {
        clearTimeout(timer);
        this.cursor = this.requests.indexOf(r) + 1;
        resolve(r);
      };
      const i = this.requests.findIndex((r, j) => j >= from && pred(r));
      if (i >= 0) done(this.requests[i]);
      else this.waiters.push({ pred, resolve: done, from });
    });
  }

  send(res: DiscoveryResponseInput | Buffer): void {
    this.call.write(res);
  }

  /** Ends the stream from the server side with a status. */
  fail(code = grpc.status.UNAVAILABLE, details = 'test server ends the stream'): void {
    this.call.emit('error', { code, details });
  }
}

export class FakeControlServer {
  server: grpc.Server | undefined;
  port = 0;
  readonly streams: FakeStream[] = [];
  private streamWaiters: Array<(s: FakeStream) => void> = [];

  async start(port = 0): Promise<this> {
    const server = new grpc.Server();
    server.addService(rawCapable, {
      StreamResources: (call: Call) => {
        const s = new FakeStream(call);
        this.streams.push(s);
        for (const w of this.streamWaiters.splice(0)) w(s);
      },
    });
    this.port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    this.server = server;
    return this;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** The next stream to open (or the n-th overall, if it is open already). */
  stream(index: number, timeoutMs = 5000): Promise<FakeStream> {
    if (this.streams[index] !== undefined) return Promise.resolve(this.streams[index]);
    return new Promise<FakeStream>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`stream #${index} did not open within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const check = () => {
        if (this.streams[index] !== undefined) {
          clearTimeout(timer);
          resolve(this.streams[index]);
        } else this.streamWaiters.push(check);
      };
      this.streamWaiters.push(check);
    });
  }

  stop(): void {
    this.server?.forceShutdown();
    this.server = undefined;
  }
}

/** A test double of the mesh side of a source: records updates and errors; optionally validates like the mesh. */
export class FakeSink implements DiscoverySink {
  readonly updates: Array<Record<string, ServiceConfig>> = [];
  readonly errors: Error[] = [];
  validate: ((services: Record<string, ServiceConfig>) => void) | undefined;
  private waiters: Array<{ n: number; resolve: () => void }> = [];
  private errorWaiters: Array<{ pred: (e: Error) => boolean; resolve: (e: Error) => void }> = [];

  update(snapshot: { services: Record<string, ServiceConfig> }): void {
    this.validate?.(snapshot.services);
    this.updates.push(structuredClone(snapshot.services));
    this.waiters = this.waiters.filter((w) => {
      if (this.updates.length >= w.n) {
        w.resolve();
        return false;
      }
      return true;
    });
  }

  error(err: Error): void {
    this.errors.push(err);
    this.errorWaiters = this.errorWaiters.filter((w) => {
      if (w.pred(err)) {
        w.resolve(err);
        return false;
      }
      return true;
    });
  }

  get last(): Record<string, ServiceConfig> | undefined {
    return this.updates[this.updates.length - 1];
  }

  /** Resolves once `n` updates in all have arrived. */
  updated(n: number, timeoutMs = 5000): Promise<void> {
    if (this.updates.length >= n) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`only ${this.updates.length} of ${n} updates within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.waiters.push({ n, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }

  erred(pred: (e: Error) => boolean, timeoutMs = 5000): Promise<Error> {
    const found = this.errors.find(pred);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise<Error>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(`no matching error within ${timeoutMs} ms; got ${this.errors.map((e) => e.message).join(' | ')}`),
          ),
        timeoutMs,
      );
      this.errorWaiters.push({ pred, resolve: (e) => (clearTimeout(timer), resolve(e)) });
    });
  }
}

export { MeshConfigError };
