/**
 * The per-process admin endpoint (Linkerd's proxy admin port, in process): a small HTTP server,
 * bound to 127.0.0.1 unless told otherwise, that serves
 * - `GET /metrics`: meshlet's OpenTelemetry metrics in the Prometheus text format, through the
 *   SDK's `MeterProvider` and `@opentelemetry/exporter-prometheus`, when the mesh records into a
 *   provider made by `createAdminMeterProvider()` (or a `PrometheusExporter` is passed);
 * - `GET /stats`: `mesh.stats()` as JSON (what `meshlet status --admin` reads);
 * - `GET /readyz`: 200 once the mesh has its config (every discovery source delivered), else 503
 *   with each source's state; `GET /healthz`: 200 while the mesh is open.
 * Anything else is 404 (405 for another method on these paths). It closes with the mesh.
 *
 * From code, the mesh must record into the provider the admin endpoint reads:
 *
 *   const meterProvider = createAdminMeterProvider();
 *   const mesh = createMesh({ services, telemetry: { meterProvider } });
 *   await startAdminServer(mesh, { port: 9990, meterProvider });
 *
 * A mesh left on the global provider (no `telemetry.meterProvider`) records into whatever
 * MeterProvider the application registered (its exporters see meshlet's metrics; the admin
 * endpoint cannot read them back), so then `/metrics` answers 404 saying so, and `/stats` still
 * serves the same figures as JSON. The admin endpoint never registers a global provider.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeshConfigError, MeshError, type Mesh } from '@meshlet/core';

/** Options of `startAdminServer`. */
export interface AdminServerOptions {
  /** TCP port; 0 picks a free one (read it from `server.address.port`). */
  port: number;
  /** Interface to bind. Default `'127.0.0.1'` (the admin endpoint shows internals: expose it on purpose only). */
  host?: string;
  /**
   * The provider the mesh records into (`createMesh({ telemetry: { meterProvider } })`), made by
   * `createAdminMeterProvider()`: `/metrics` serves its Prometheus reader. Without it (and
   * without `prometheusExporter`), `/metrics` is 404 with an explanation.
   */
  meterProvider?: MeterProvider;
  /**
   * Your own `PrometheusExporter` (created with `preventServerStart: true` and given to the SDK
   * `MeterProvider` the mesh records into), when you build the provider yourself.
   */
  prometheusExporter?: PrometheusExporter;
}

/** A running admin endpoint. */
export interface AdminServer {
  /** Where it listens. */
  readonly address: { host: string; port: number };
  /** Whether `/metrics` is served (a Prometheus reader was found). */
  readonly metrics: boolean;
  /** Stops listening and ends open connections. Idempotent; also done when the mesh closes. */
  close(): Promise<void>;
  /** Lets the process exit while the admin endpoint (its port and any open connections to it) is all that is left open. */
  unref(): void;
}

/** The admin endpoint could not start (the port is taken, the host cannot be bound). */
export class AdminServerError extends MeshError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('MESHLET_ERR_ADMIN', message, options);
  }
}

/** Prometheus readers of the providers `createAdminMeterProvider` made. */
const readers = new WeakMap<MeterProvider, PrometheusExporter>();

/**
 * An OpenTelemetry SDK `MeterProvider` with a Prometheus reader, for `createMesh({ telemetry:
 * { meterProvider } })` and `startAdminServer(mesh, { meterProvider })`. It is not registered
 * globally: the application's own global provider (if any) is left alone.
 */
export function createAdminMeterProvider(): MeterProvider {
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const provider = new MeterProvider({ readers: [exporter] });
  readers.set(provider, exporter);
  return provider;
}

const TEXT = 'text/plain; charset=utf-8';
const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * Starts the admin endpoint for `mesh`. Resolves once it listens; rejects with
 * `MeshConfigError` for invalid options and `AdminServerError` when it cannot listen.
 */
export async function startAdminServer(mesh: Mesh, options: AdminServerOptions): Promise<AdminServer> {
  const { port, host, exporter } = readOptions(options);
  const metricsMissing =
    'meshlet: /metrics is not served by this admin endpoint: the mesh records its metrics into the ' +
    "application's MeterProvider (or none), which this endpoint cannot read. Create the mesh with " +
    'telemetry: { meterProvider: createAdminMeterProvider() } and pass the same meterProvider to ' +
    'startAdminServer, or export through your own SDK. /stats serves the same figures as JSON.\n';

  const server: Server = createServer((req, res) => handle(req, res));
  const sockets = new Set<import('node:net').Socket>();
  let unrefd = false;
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    // After unref(), a scraper's keep-alive connection must not keep a finished program running either.
    if (unrefd) s.unref();
  });

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const known = path === '/metrics' || path === '/stats' || path === '/readyz' || path === '/healthz';
    if (!known) return send(res, 404, TEXT, `not found: ${path}; try /metrics, /stats, /readyz or /healthz\n`);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return send(res, 405, TEXT, `${req.method ?? ''} is not allowed on ${path}; use GET\n`);
    }
    switch (path) {
      case '/metrics':
        if (exporter === undefined) return send(res, 404, TEXT, metricsMissing);
        exporter.getMetricsRequestHandler(req, res);
        return;
      case '/stats':
        return send(res, 200, JSON_TYPE, JSON.stringify(mesh.stats()));
      case '/readyz': {
        if (mesh.isClosed) return send(res, 503, JSON_TYPE, JSON.stringify({ ready: false, closed: true }));
        const ready = mesh.isReady;
        return send(
          res,
          ready ? 200 : 503,
          JSON_TYPE,
          JSON.stringify({ ready, service: mesh.service ?? null, sources: mesh.discoveryStatus() }),
        );
      }
      case '/healthz':
        return mesh.isClosed ? send(res, 503, TEXT, 'closed\n') : send(res, 200, TEXT, 'ok\n');
    }
  }

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      const why =
        err.code === 'EADDRINUSE'
          ? 'the port is already in use'
          : err.code === 'EACCES'
            ? 'permission denied'
            : err.code === 'EADDRNOTAVAIL'
              ? 'no interface has that address'
              : err.message;
      reject(
        new AdminServerError(
          `the meshlet admin endpoint cannot listen on ${formatHostPort(host, port)} (${err.code ?? 'error'}: ${why}): ` +
            'choose another port (0 picks a free one) or host',
          { cause: err },
        ),
      );
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      unsubscribe();
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    });
    return closing;
  };
  const unsubscribe = mesh.subscribe({ closed: () => close() });
  if (mesh.isClosed) await close();

  return {
    address: { host: bound.address, port: bound.port },
    metrics: exporter !== undefined,
    close,
    unref: () => {
      unrefd = true;
      server.unref();
      for (const s of sockets) s.unref();
    },
  };
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.statusCode = status;
  res.setHeader('content-type', type);
  res.setHeader('cache-control', 'no-store');
  res.end(body);
}

function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function readOptions(options: AdminServerOptions): {
  port: number;
  host: string;
  exporter: PrometheusExporter | undefined;
} {
  const issues: Array<{ path: string; message: string }> = [];
  const o = (typeof options === 'object' && options !== null ? options : {}) as Partial<AdminServerOptions>;
  if (typeof options !== 'object' || options === null) {
    issues.push({ path: 'startAdminServer options', message: 'expected { port, host?, meterProvider? }' });
  }
  const port = o.port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) {
    issues.push({
      path: 'startAdminServer options.port',
      message: `expected an integer from 0 to 65535, got ${JSON.stringify(port) ?? String(port)}`,
    });
  }
  const host = o.host ?? '127.0.0.1';
  if (typeof host !== 'string' || host === '') {
    issues.push({
      path: 'startAdminServer options.host',
      message: `expected an interface address such as "127.0.0.1", got ${JSON.stringify(host) ?? String(host)}`,
    });
  }
  let exporter: PrometheusExporter | undefined;
  if (o.prometheusExporter !== undefined) {
    if (o.prometheusExporter instanceof PrometheusExporter) exporter = o.prometheusExporter;
    else
      issues.push({
        path: 'startAdminServer options.prometheusExporter',
        message: 'expected a PrometheusExporter from @opentelemetry/exporter-prometheus',
      });
  }
  if (o.meterProvider !== undefined) {
    const found = readers.get(o.meterProvider);
    if (found === undefined) {
      issues.push({
        path: 'startAdminServer options.meterProvider',
        message:
          'expected a provider made by createAdminMeterProvider() (a provider built elsewhere has no reader this ' +
          'endpoint can serve: pass its PrometheusExporter as prometheusExporter instead)',
      });
    } else exporter ??= found;
  }
  if (issues.length > 0) throw new MeshConfigError(issues);
  return { port: port as number, host, exporter };
}
