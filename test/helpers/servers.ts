// Real node:http servers on 127.0.0.1 port 0 with programmable behaviour, for the end-to-end tests.
// Every server records what it received; `ServerSet.closeAll()` destroys every socket, so a hanging
// server never keeps a test alive.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** What a server does with a request once it has arrived. */
export type Mode =
  /** Answer normally (status, headers, body, latency below). */
  | 'ok'
  /** Accept the request and never answer. */
  | 'hang'
  /** Destroy the socket before writing any byte. */
  | 'reset-before-response'
  /** Write part of the status line and headers, then destroy the socket. */
  | 'reset-partial-headers'
  /** Write the headers (with the full Content-Length) and half of the body, then destroy the socket. */
  | 'reset-mid-body';

export interface Behaviour {
  /** Default `'ok'`. */
  mode?: Mode;
  /** Status of a normal answer. Default 200. */
  status?: number;
  /** Body of a normal answer. Default: the server's id. */
  body?: string | Buffer | ((req: RecordedRequest) => string | Buffer);
  /** Extra response headers. */
  headers?: Record<string, string>;
  /** Delay before answering (after the request body was read), ms. Default 0. */
  latencyMs?: number;
  /** Share (0..1) of requests answered with `failStatus`, spread evenly (deterministic). Default 0. */
  failRatio?: number;
  /** The first N requests are answered with `failStatus`. Default 0. */
  failFirst?: number;
  /** Status of a failed answer. Default 503. */
  failStatus?: number;
}

export interface RecordedRequest {
  /** Order of arrival across every server of the process. */
  seq: number;
  /** Id of the server that received it. */
  server: string;
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  /** Filled once the request body has been read (empty for requests reset on arrival). */
  body: Buffer;
  /** `performance.now()` at arrival. */
  at: number;
}

let globalSeq = 0;

export class TestServer {
  readonly id: string;
  behaviour: Behaviour;
  readonly requests: RecordedRequest[] = [];
  /** Requests that arrived but have not been answered or reset yet. */
  inFlight = 0;
  readonly #server: http.Server;
  readonly #sockets = new Set<Socket>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #handled = 0;
  #closed: Promise<void> | undefined;

  constructor(id: string, behaviour: Behaviour) {
    this.id = id;
    this.behaviour = behaviour;
    this.#server = http.createServer((req, res) => this.#handle(req, res));
    this.#server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(0, '127.0.0.1', () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    return this;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** `127.0.0.1:<port>`, the form used in mesh config. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** `http://127.0.0.1:<port>`. */
  get url(): string {
    return `http://${this.address}`;
  }

  /** Requests received so far (counted on arrival, whatever the behaviour). */
  get count(): number {
    return this.requests.length;
  }

  /** Connections currently open on the server side. */
  get openSockets(): number {
    return this.#sockets.size;
  }

  /** Forgets the recorded requests (the fail counters keep counting). */
  reset(): void {
    this.requests.length = 0;
  }

  /**
   * Graceful close: stop accepting, close idle connections, wait for in-flight requests to be
   * answered. After `forceAfterMs` every remaining socket is destroyed.
   */
  close(options: { graceful?: boolean; forceAfterMs?: number } = {}): Promise<void> {
    if (this.#closed) return this.#closed;
    const { graceful = false, forceAfterMs = 5000 } = options;
    this.#closed = new Promise<void>((resolve) => {
      let force: NodeJS.Timeout | undefined;
      this.#server.close(() => {
        if (force) clearTimeout(force);
        resolve();
      });
      if (graceful) {
        this.#server.closeIdleConnections();
        force = setTimeout(() => this.#destroyAll(), forceAfterMs);
      } else {
        this.#destroyAll();
      }
    });
    return this.#closed;
  }

  #destroyAll(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    for (const socket of this.#sockets) socket.destroy();
    this.#server.closeAllConnections();
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const rec: RecordedRequest = {
      seq: ++globalSeq,
      server: this.id,
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      body: Buffer.alloc(0),
      at: performance.now(),
    };
    this.requests.push(rec);
    const b = this.behaviour;
    const mode = b.mode ?? 'ok';
    const socket = req.socket;

    if (mode === 'reset-before-response') {
      socket.destroy();
      return;
    }
    if (mode === 'reset-partial-headers') {
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/pl', () => socket.destroy());
      return;
    }

    this.inFlight++;
    res.on('close', () => this.inFlight--);
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('error', () => {});
    req.on('end', () => {
      rec.body = Buffer.concat(chunks);
      if (mode === 'hang') return;
      const n = this.#handled++;
      const failRatio = b.failRatio ?? 0;
      const fail =
        n < (b.failFirst ?? 0) || (failRatio > 0 && Math.floor((n + 1) * failRatio) > Math.floor(n * failRatio));
      const answer = (): void => {
        if (res.destroyed) return;
        const status = fail ? (b.failStatus ?? 503) : (b.status ?? 200);
        const raw = typeof b.body === 'function' ? b.body(rec) : (b.body ?? this.id);
        const body = Buffer.isBuffer(raw) ? raw : Buffer.from(raw);
        const headers = {
          'content-type': 'text/plain; charset=utf-8',
          'content-length': String(body.length),
          'x-server': this.id,
          ...b.headers,
        };
        if (mode === 'reset-mid-body') {
          res.writeHead(status, headers);
          res.write(body.subarray(0, Math.floor(body.length / 2)), () => socket.destroy());
          return;
        }
        res.writeHead(status, headers);
        res.end(body);
      };
      const latency = b.latencyMs ?? 0;
      if (latency > 0) {
        const timer = setTimeout(() => {
          this.#timers.delete(timer);
          answer();
        }, latency);
        this.#timers.add(timer);
      } else {
        answer();
      }
    });
  }
}

/** A group of servers started by one test file; `closeAll()` in `after()`. */
export class ServerSet {
  readonly servers: TestServer[] = [];

  async start(id: string, behaviour: Behaviour = {}): Promise<TestServer> {
    const server = await new TestServer(id, behaviour).listen();
    this.servers.push(server);
    return server;
  }

  async startMany(prefix: string, n: number, behaviour: Behaviour = {}): Promise<TestServer[]> {
    const out: TestServer[] = [];
    for (let i = 0; i < n; i++) out.push(await this.start(`${prefix}${i}`, { ...behaviour }));
    return out;
  }

  /** Hard close: destroys every socket, including those of hanging requests. */
  async closeAll(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.close()));
  }
}

/** Requests of all given servers, in order of arrival. */
export function requestsOf(servers: readonly TestServer[]): RecordedRequest[] {
  return servers.flatMap((s) => s.requests).sort((a, b) => a.seq - b.seq);
}

/** Total requests received by the given servers. */
export function totalCount(servers: readonly TestServer[]): number {
  return servers.reduce((sum, s) => sum + s.count, 0);
}
