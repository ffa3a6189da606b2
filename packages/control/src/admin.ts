/**
 * The control server's admin HTTP endpoint (node:http, JSON only). Read-only: it shows state,
 * it never changes it. The `meshlet` CLI reads it (`check`, `status`, `endpoints`).
 *
 *   GET /healthz              200 while the server runs (503 once it stops)
 *   GET /readyz               200 when the config is loaded and the gRPC port listens, else 503
 *   GET /clients              connected clients: node id, service, peer, ACKed versions, behind, last NACK
 *   GET /config               config path, current version, last reload error or null, service count
 *   GET /endpoints/<service>  the endpoints served for one service, and where each came from
 *
 * Other paths answer 404, other methods 405, both as JSON `{ error }`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ClientView {
  nodeId: string;
  /** `node.cluster`: the service the client process is ('' if it did not say). */
  service: string;
  zone: string;
  peer: string;
  userAgent: string;
  /** ISO time the stream started. */
  connectedAt: string;
  /** Subscribed type URLs. */
  subscriptions: string[];
  /** Last ACKed version per type URL ('' before the first ACK). */
  acked: Record<string, string>;
  /** The server's current version per subscribed type URL. */
  current: Record<string, string>;
  /** True when, for some subscribed type, the client has not ACKed the current version within the grace time. */
  behind: boolean;
  lastNack: { typeUrl: string; version: string; reason: string; at: string } | null;
  /** How many endpoints the client has registered. */
  registrations: number;
}

export interface ConfigView {
  path: string;
  /** Snapshot version ('0' before the first snapshot). */
  version: string;
  /** Version of each type's current resources. */
  versions: Record<string, string>;
  /** ISO time the served config was loaded. */
  loadedAt: string | null;
  services: number;
  /** Services with at least one registration. */
  registeredServices: number;
  /** The last reload's error, while the file stays invalid; null once a reload succeeds. */
  lastReloadError: { message: string; at: string } | null;
}

export interface EndpointsView {
  service: string;
  version: string;
  /** Whether the service has an entry in the config file (else: registrations only, default policies). */
  configured: boolean;
  /** Error of the last DNS resolution of the service, if it uses `dns` and that failed. */
  dnsError: string | null;
  endpoints: Array<{
    address: string;
    weight: number;
    zone: string;
    metadata: Record<string, string>;
    source: 'static' | 'dns' | 'registration';
    /** For `registration`: the node that registered it. */
    nodeId?: string;
  }>;
}

/** What the admin endpoint reads from the server. */
export interface AdminState {
  running(): boolean;
  ready(): boolean;
  clients(): ClientView[];
  config(): ConfigView;
  /** undefined: the service is unknown. */
  endpoints(service: string): EndpointsView | undefined;
}

export class AdminServer {
  private readonly server: Server;

  constructor(private readonly state: AdminState) {
    this.server = createServer((req, res) => this.handle(req, res));
    // The admin port serves short JSON answers: drop idle keep-alive sockets fast so stop() is quick.
    this.server.keepAliveTimeout = 1000;
  }

  listen(port: number, host: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.server.listening) {
        resolve();
        return;
      }
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url ?? '/', 'http://admin').pathname);
    } catch {
      send(res, 400, { error: `malformed request path ${JSON.stringify(req.url)}` });
      return;
    }
    const route = matchRoute(path);
    if (route === undefined) {
      send(res, 404, {
        error: `no such admin path ${JSON.stringify(path)}; try /healthz, /readyz, /clients, /config or /endpoints/<service>`,
      });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      send(res, 405, { error: `method ${req.method} not allowed on ${path}; use GET` });
      return;
    }
    try {
      switch (route.kind) {
        case 'healthz': {
          const ok = this.state.running();
          send(res, ok ? 200 : 503, { status: ok ? 'ok' : 'stopping' });
          return;
        }
        case 'readyz': {
          const ok = this.state.ready();
          send(res, ok ? 200 : 503, { status: ok ? 'ready' : 'not ready' });
          return;
        }
        case 'clients':
          send(res, 200, this.state.clients());
          return;
        case 'config':
          send(res, 200, this.state.config());
          return;
        case 'endpoints': {
          const view = this.state.endpoints(route.service);
          if (view === undefined) {
            send(res, 404, {
              error: `unknown service ${JSON.stringify(route.service)}: it is neither in the config file nor registered`,
            });
          } else {
            send(res, 200, view);
          }
          return;
        }
      }
    } catch (err) {
      send(res, 500, { error: `admin endpoint failed: ${(err as Error).message}` });
    }
  }
}

type Route = { kind: 'healthz' | 'readyz' | 'clients' | 'config' } | { kind: 'endpoints'; service: string };

function matchRoute(path: string): Route | undefined {
  switch (path) {
    case '/healthz':
    case '/readyz':
    case '/clients':
    case '/config':
      return { kind: path.slice(1) as 'healthz' | 'readyz' | 'clients' | 'config' };
  }
  if (path.startsWith('/endpoints/') && path.length > '/endpoints/'.length) {
    return { kind: 'endpoints', service: path.slice('/endpoints/'.length) };
  }
  return undefined;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}
