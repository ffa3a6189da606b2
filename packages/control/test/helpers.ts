// Test helpers: a control server on 127.0.0.1:0 over a temp config file, a raw grpc-js client
// speaking the protocol module's codec, and log capture.
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import {
  decodeResource,
  discoveryService,
  ENDPOINT_SET_TYPE_URL,
  REGISTRATION_TYPE_URL,
  SERVICE_TYPE_URL,
  type DecodedResource,
  type DiscoveryRequestInput,
  type DiscoveryResponse,
} from '@meshlet/discovery/protocol';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { createControlServer, type ControlServer, type ControlServerOptions } from '../src/server.js';

export { ENDPOINT_SET_TYPE_URL, REGISTRATION_TYPE_URL, SERVICE_TYPE_URL };

export interface LogLine {
  level: number;
  event?: string;
  msg: string;
  [key: string]: unknown;
}

export function captureLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) });
  return { logger, lines };
}

export interface TestServer {
  server: ControlServer;
  dir: string;
  configPath: string;
  lines: LogLine[];
  /** An atomic save (temp file, rename into place): the server reads it 2 ms after its event. */
  writeConfig(text: string): Promise<void>;
  admin(path: string): Promise<{ status: number; body: any }>;
  close(): Promise<void>;
}

export async function startServer(
  configText: string,
  options: Partial<ControlServerOptions> = {},
  fileName = 'mesh.yaml',
): Promise<TestServer> {
  const dir = await mkdtemp(join(tmpdir(), 'meshlet-control-'));
  const configPath = join(dir, fileName);
  await writeFile(configPath, configText);
  const { logger, lines } = captureLogger();
  const server = createControlServer({
    configPath,
    host: '127.0.0.1',
    port: 0,
    adminPort: 0,
    logger,
    debounceMs: 20,
    registrationGraceMs: 300,
    filePollMs: 100,
    ...options,
  });
  await server.start();
  let n = 0;
  return {
    server,
    dir,
    configPath,
    lines,
    async writeConfig(text) {
      const tmp = join(dir, `.tmp-${n++}`);
      await writeFile(tmp, text);
      await rename(tmp, configPath);
    },
    async admin(path) {
      const res = await fetch(`http://127.0.0.1:${server.adminAddress.port}${path}`);
      return { status: res.status, body: await res.json() };
    },
    async close() {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const Client = grpc.makeGenericClientConstructor(discoveryService, 'AggregatedDiscoveryService');

export interface Received {
  response: DiscoveryResponse;
  resources: DecodedResource[];
}

/** One raw stream to the server, with a queue of received responses. */
export class TestClient {
  readonly client: grpc.Client;
  readonly call: grpc.ClientDuplexStream<DiscoveryRequestInput, DiscoveryResponse>;
  private readonly queue: Received[] = [];
  private waiters: Array<() => void> = [];
  status: grpc.StatusObject | undefined;
  error: grpc.ServiceError | undefined;
  ended = false;

  constructor(port: number) {
    this.client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    this.call = (this.client as any).StreamResources() as grpc.ClientDuplexStream<
      DiscoveryRequestInput,
      DiscoveryResponse
    >;
    this.call.on('data', (response: DiscoveryResponse) => {
      this.queue.push({ response, resources: response.resources.map((r) => decodeResource(r)) });
      this.wake();
    });
    this.call.on('status', (s: grpc.StatusObject) => {
      this.status = s;
      this.wake();
    });
    this.call.on('error', (e: grpc.ServiceError) => {
      this.error = e;
      this.wake();
    });
    this.call.on('end', () => {
      this.ended = true;
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  send(req: DiscoveryRequestInput): void {
    this.call.write(req);
  }

  /** Subscribes (wildcard) to Service and EndpointSet, with `node` on the first request. */
  subscribe(nodeId: string, cluster = 'tester'): void {
    this.send({ node: { id: nodeId, cluster, userAgentName: 'test' }, typeUrl: SERVICE_TYPE_URL });
    this.send({ typeUrl: ENDPOINT_SET_TYPE_URL });
  }

  /** The next response (of `typeUrl`, skipping none: fails if another type comes first). */
  async next(typeUrl?: string, timeoutMs = 10_000): Promise<Received> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = this.queue.shift();
      if (r !== undefined) {
        if (typeUrl !== undefined && r.response.typeUrl !== typeUrl) {
          throw new Error(
            `expected a ${typeUrl} response, got ${r.response.typeUrl} version ${r.response.versionInfo}`,
          );
        }
        return r;
      }
      if (this.status !== undefined || this.error !== undefined) {
        throw new Error(`stream ended: ${this.error?.message ?? this.status?.details}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no response within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Waits for the next response of `typeUrl`, dropping responses of other types. */
  async nextOf(typeUrl: string, timeoutMs = 10_000): Promise<Received> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await this.next(undefined, Math.max(1, deadline - Date.now()));
      if (r.response.typeUrl === typeUrl) return r;
    }
  }

  pending(): Received[] {
    return [...this.queue];
  }

  ack(r: Received): void {
    this.send({ typeUrl: r.response.typeUrl, versionInfo: r.response.versionInfo, responseNonce: r.response.nonce });
  }

  async waitEnd(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.status === undefined && this.error === undefined) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('stream did not end');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.call.cancel();
    this.client.close();
  }
}

/** Names → decoded values of a response's resources (asserts each decoded). */
export function byName(r: Received): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const d of r.resources) {
    if (!d.ok) throw new Error(`undecodable resource: ${d.reason}`);
    out[d.name] = d.value;
  }
  return out;
}

/** Polls `fn` until it returns a truthy value (or throws after `timeoutMs`). */
export async function eventually<T>(
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
