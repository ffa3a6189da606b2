/**
 * `meshlet check`, `meshlet endpoints` and `meshlet status`: they read the control server's admin
 * endpoint (JSON over HTTP) and the config file, and print either lines for humans (√ / ×, in the
 * spirit of `linkerd check`) or one JSON document (`--json`) for scripts.
 */
import { MeshConfigError, type InboundStats } from '@meshlet/core';
import { readConfigFile } from '@meshlet/discovery';
import type { ClientView, ConfigView, EndpointsView } from './admin.js';

export interface Output {
  stdout(text: string): void;
  stderr(text: string): void;
}

/** One line of `meshlet check`. */
export interface CheckResult {
  section: 'config file' | 'control server';
  ok: boolean;
  message: string;
  /** Extra lines (each issue of an invalid file, a NACK's reason). */
  details?: string[];
}

const OK = '√';
const BAD = '×';
const REQUEST_TIMEOUT_MS = 5000;

/** The admin endpoint did not answer (connection refused, timeout, not JSON). */
class UnreachableError extends Error {}

async function getJson(base: string, path: string): Promise<{ status: number; body: unknown }> {
  let res: Response;
  try {
    res = await fetch(base + path, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (err as Error).message;
    throw new UnreachableError(
      `cannot reach the control server's admin endpoint at ${base} (${why}); is "meshlet control" running, and is ${base.replace(/^https?:\/\//, '')} its --admin-port?`,
    );
  }
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    throw new UnreachableError(
      `${base}${path} did not answer JSON (HTTP ${res.status}); is ${base} a meshlet control server's admin address?`,
    );
  }
  return { status: res.status, body };
}

/** `type.meshlet.dev/meshlet.v1.EndpointSet` → `EndpointSet`. */
function shortType(typeUrl: string): string {
  const i = typeUrl.lastIndexOf('.');
  return i >= 0 ? typeUrl.slice(i + 1) : typeUrl;
}

function describeClient(c: ClientView): string {
  return `${c.nodeId} (${c.service === '' ? 'no service' : c.service}, ${c.peer})`;
}

/** Problems of one client: a NACK of a version still current, or being behind. */
export function clientProblems(c: ClientView): string[] {
  const out: string[] = [];
  const nack = c.lastNack;
  if (nack !== null && c.current[nack.typeUrl] === nack.version) {
    out.push(
      `client ${describeClient(c)} rejected (NACKed) ${shortType(nack.typeUrl)} version ${nack.version}: ${nack.reason}`,
    );
  } else if (c.behind) {
    const lagging = Object.keys(c.current)
      .filter((t) => (c.acked[t] ?? '') !== c.current[t])
      .map(
        (t) =>
          `${shortType(t)} ACKed ${c.acked[t] === undefined || c.acked[t] === '' ? 'none' : c.acked[t]}, current ${c.current[t]}`,
      );
    out.push(`client ${describeClient(c)} is behind: ${lagging.join('; ')}`);
  }
  return out;
}

export async function runCheck(
  opts: { config: string | undefined; control: string | undefined; json: boolean },
  out: Output,
): Promise<number> {
  const checks: CheckResult[] = [];
  let unreachable = false;

  if (opts.config !== undefined) {
    try {
      const file = await readConfigFile(opts.config);
      const n = Object.keys(file.config.services ?? {}).length;
      checks.push({
        section: 'config file',
        ok: true,
        message: `${opts.config} is a valid mesh config (${n} service${n === 1 ? '' : 's'})`,
      });
    } catch (err) {
      const message = (err as Error).message;
      const named = message.startsWith(opts.config) ? message : `${opts.config}: ${message}`;
      if (err instanceof MeshConfigError && err.issues.length > 1) {
        checks.push({
          section: 'config file',
          ok: false,
          message: `${opts.config} is not a valid mesh config (${err.issues.length} problems)`,
          details: err.issues.map((i) => `${i.path}: ${i.message}`),
        });
      } else {
        checks.push({ section: 'config file', ok: false, message: named });
      }
    }
  }

  if (opts.control !== undefined) {
    const base = opts.control;
    try {
      const health = await getJson(base, '/healthz');
      checks.push({
        section: 'control server',
        ok: health.status === 200,
        message:
          health.status === 200
            ? `control server at ${base} is reachable and healthy`
            : `control server at ${base} answers /healthz with HTTP ${health.status} (stopping?)`,
      });
      const ready = await getJson(base, '/readyz');
      checks.push({
        section: 'control server',
        ok: ready.status === 200,
        message:
          ready.status === 200
            ? 'control server is ready (config loaded, gRPC port listening)'
            : `control server is not ready (HTTP ${ready.status})`,
      });
      const config = (await getJson(base, '/config')).body as ConfigView;
      if (config.lastReloadError === null) {
        checks.push({
          section: 'control server',
          ok: true,
          message: `config ${config.path} is loaded (${plural(config.services, 'service')}, version ${config.version})`,
        });
      } else {
        checks.push({
          section: 'control server',
          ok: false,
          message: `the last reload of ${config.path} failed at ${config.lastReloadError.at}; still serving version ${config.version}`,
          details: [config.lastReloadError.message],
        });
      }
      const clients = (await getJson(base, '/clients')).body as ClientView[];
      const problems = clients.flatMap(clientProblems);
      if (problems.length === 0) {
        checks.push({
          section: 'control server',
          ok: true,
          message: `${clients.length} client${clients.length === 1 ? '' : 's'} connected, none NACKed or behind`,
        });
      } else {
        for (const p of problems) checks.push({ section: 'control server', ok: false, message: p });
      }
    } catch (err) {
      if (!(err instanceof UnreachableError)) throw err;
      unreachable = true;
      checks.push({ section: 'control server', ok: false, message: err.message });
    }
  }

  const failed = checks.filter((c) => !c.ok).length;
  const exitCode = unreachable ? 2 : failed > 0 ? 1 : 0;
  if (opts.json) {
    out.stdout(JSON.stringify({ ok: exitCode === 0, exitCode, checks }, null, 2));
    return exitCode;
  }
  const lines: string[] = [];
  let section = '';
  for (const c of checks) {
    if (c.section !== section) {
      if (section !== '') lines.push('');
      section = c.section;
      const title = section === 'control server' ? `control server (${opts.control})` : section;
      lines.push(title, '-'.repeat(title.length));
    }
    lines.push(`${c.ok ? OK : BAD} ${c.message}`);
    for (const d of c.details ?? []) lines.push(`    ${d}`);
  }
  lines.push(
    '',
    failed === 0
      ? `Status check results are ${OK}`
      : `Status check results are ${BAD} (${failed} problem${failed === 1 ? '' : 's'})`,
  );
  out.stdout(lines.join('\n'));
  return exitCode;
}

export async function runEndpoints(
  opts: { service: string; control: string; json: boolean },
  out: Output,
): Promise<number> {
  let res;
  try {
    res = await getJson(opts.control, `/endpoints/${encodeURIComponent(opts.service)}`);
  } catch (err) {
    if (!(err instanceof UnreachableError)) throw err;
    out.stderr(`meshlet endpoints: ${err.message}`);
    return 2;
  }
  if (res.status === 404) {
    if (opts.json) out.stdout(JSON.stringify(res.body, null, 2));
    else
      out.stderr(`meshlet endpoints: ${(res.body as { error?: string }).error ?? `unknown service "${opts.service}"`}`);
    return 1;
  }
  if (res.status !== 200) {
    out.stderr(`meshlet endpoints: the admin endpoint answered HTTP ${res.status}: ${JSON.stringify(res.body)}`);
    return 1;
  }
  const view = res.body as EndpointsView;
  if (opts.json) {
    out.stdout(JSON.stringify(view, null, 2));
    return 0;
  }
  const lines = [
    `${view.service}: ${view.endpoints.length} endpoint${view.endpoints.length === 1 ? '' : 's'}, version ${view.version}${view.configured ? '' : ' (not in the config file: registrations only, default policies)'}`,
  ];
  if (view.dnsError !== null)
    lines.push(`${BAD} last DNS resolution failed (serving the last good answer): ${view.dnsError}`);
  if (view.endpoints.length > 0) {
    lines.push(
      ...table(
        ['ADDRESS', 'WEIGHT', 'ZONE', 'SOURCE', 'NODE'],
        view.endpoints.map((e) => [e.address, String(e.weight), e.zone || '-', e.source, e.nodeId ?? '-']),
      ),
    );
  }
  out.stdout(lines.join('\n'));
  return 0;
}

export async function runStatus(opts: { control: string; json: boolean }, out: Output): Promise<number> {
  let config: ConfigView;
  let clients: ClientView[];
  let ready: boolean;
  try {
    ready = (await getJson(opts.control, '/readyz')).status === 200;
    config = (await getJson(opts.control, '/config')).body as ConfigView;
    clients = (await getJson(opts.control, '/clients')).body as ClientView[];
  } catch (err) {
    if (!(err instanceof UnreachableError)) throw err;
    out.stderr(`meshlet status: ${err.message}`);
    return 2;
  }
  if (opts.json) {
    out.stdout(JSON.stringify({ control: opts.control, ready, config, clients }, null, 2));
    return 0;
  }
  const lines = [
    `control server ${opts.control}: ${ready ? 'ready' : 'NOT READY'}`,
    `  config   ${config.path}: ${plural(config.services, 'service')} (${config.registeredServices} with registrations), version ${config.version}, loaded ${config.loadedAt ?? '-'}`,
    `  reload   ${config.lastReloadError === null ? 'ok' : `FAILED at ${config.lastReloadError.at}: ${config.lastReloadError.message}`}`,
    '',
    `clients: ${clients.length}`,
  ];
  if (clients.length > 0) {
    const types = [...new Set(clients.flatMap((c) => Object.keys(c.current)))].sort().reverse();
    lines.push(
      ...table(
        ['NODE', 'SERVICE', 'PEER', ...types.map((t) => `${shortType(t)} ACKED`), 'REGS', 'STATE'],
        clients.map((c) => {
          const problems = clientProblems(c);
          return [
            c.nodeId,
            c.service || '-',
            c.peer,
            ...types.map(
              (t) =>
                (c.acked[t] === undefined || c.acked[t] === '' ? '-' : c.acked[t]!) +
                (c.current[t] !== undefined && c.acked[t] !== c.current[t] ? ` (of ${c.current[t]})` : ''),
            ),
            String(c.registrations),
            problems.length === 0
              ? 'ok'
              : c.lastNack !== null && problems[0]!.includes('NACKed')
                ? `NACK: ${firstLine(c.lastNack.reason)}`
                : 'behind',
          ];
        }),
      ),
    );
  }
  out.stdout(lines.join('\n'));
  return 0;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function firstLine(s: string): string {
  const line = s.split('\n', 1)[0] ?? '';
  return line.length > 120 ? line.slice(0, 120) + '…' : line;
}

function table(head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]): string =>
    '  ' +
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [fmt(head), ...rows.map(fmt)];
}

// -------------------------------------------------------------------------------------------------
// `meshlet status --admin host:port`: one process's admin endpoint (meshlet/register's
// MESHLET_ADMIN_PORT, or startAdminServer) read twice, `intervalMs` apart: request rate and
// success rate come from the difference, latency percentiles from the mesh's recent window.

/** The parts of `mesh.stats()` this command reads (the admin endpoint's /stats). */
interface AdminServiceStats {
  requests: number;
  successes: number;
  failures: number;
  cancelled?: number;
  inFlight?: number;
  recentRequests: number;
  latencyMs: { p50: number; p90: number; p99: number };
  endpoints: Array<{ address: string; state: string; requests: number; failures: number; inFlight?: number }>;
}
interface AdminStats {
  services: Record<string, AdminServiceStats>;
  inbound?: InboundStats[];
}

/** One service's row of `meshlet status --admin`. */
export interface AdminServiceRow {
  service: string;
  /** Calls per second over the sampling interval. */
  rps: number;
  /** Successes / (successes + failures) over the interval, else since start; null when there were none. */
  successRate: number | null;
  /** Over the mesh's recent window; null when it holds no call. */
  p50Ms: number | null;
  p99Ms: number | null;
  requests: number;
  failures: number;
  inFlight: number;
  /** Endpoint count per state (healthy, ejected, open, half-open). */
  endpoints: Record<string, number>;
}

/** One (route, caller) row of the inbound section. */
export interface AdminInboundRow {
  route: string;
  caller: string;
  rps: number;
  successRate: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
  requests: number;
  failures: number;
  cancelled: number;
}

export interface AdminStatusView {
  admin: string;
  ready: boolean;
  intervalMs: number;
  services: AdminServiceRow[];
  inbound: AdminInboundRow[];
}

export interface AdminStatusOptions {
  /** Base URL of the admin endpoint (`http://host:port`). */
  admin: string;
  json: boolean;
  /** Time between the two samples, ms. */
  intervalMs: number;
  /** Redraw every interval until `signal` aborts (SIGINT in the CLI). */
  watch?: boolean;
  signal?: AbortSignal;
  /** Clock and sleep (tests). */
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

async function readAdminStats(base: string): Promise<AdminStats> {
  let res;
  try {
    res = await getJson(base, '/stats');
  } catch (err) {
    if (!(err instanceof UnreachableError)) throw err;
    throw new UnreachableError(
      err.message
        .replace("the control server's admin endpoint", "the process's meshlet admin endpoint")
        .replace(
          /is "meshlet control" running.*$/,
          `is the process running with MESHLET_ADMIN_PORT (or startAdminServer) on ${base.replace(/^https?:\/\//, '')}?`,
        )
        .replace(
          /a meshlet control server's admin address\?$/,
          "a process's meshlet admin endpoint (MESHLET_ADMIN_PORT)?",
        ),
    );
  }
  const body = res.body as Partial<AdminStats> | null;
  if (res.status !== 200 || body === null || typeof body !== 'object' || typeof body.services !== 'object') {
    throw new UnreachableError(
      `${base}/stats answered HTTP ${res.status} without mesh stats: is ${base} a process's meshlet admin endpoint ` +
        '(MESHLET_ADMIN_PORT)? For the control server, use --control',
    );
  }
  return body as AdminStats;
}

function rate(successes: number, failures: number): number | null {
  const n = successes + failures;
  return n === 0 ? null : successes / n;
}

/** Builds the view from two samples of /stats taken `elapsedMs` apart. */
export function adminStatusView(
  admin: string,
  ready: boolean,
  before: AdminStats,
  after: AdminStats,
  elapsedMs: number,
): AdminStatusView {
  const seconds = Math.max(elapsedMs, 1) / 1000;
  const services: AdminServiceRow[] = Object.keys(after.services)
    .sort()
    .map((name) => {
      const s = after.services[name]!;
      const b = before.services[name];
      const dReq = b === undefined ? 0 : Math.max(0, s.requests - b.requests);
      const dOk = b === undefined ? 0 : Math.max(0, s.successes - b.successes);
      const dFail = b === undefined ? 0 : Math.max(0, s.failures - b.failures);
      const endpoints: Record<string, number> = {};
      for (const e of s.endpoints) endpoints[e.state] = (endpoints[e.state] ?? 0) + 1;
      const recent = s.recentRequests > 0;
      return {
        service: name,
        rps: dReq / seconds,
        successRate: dOk + dFail > 0 ? dOk / (dOk + dFail) : rate(s.successes, s.failures),
        p50Ms: recent ? s.latencyMs.p50 : null,
        p99Ms: recent ? s.latencyMs.p99 : null,
        requests: s.requests,
        failures: s.failures,
        inFlight: s.inFlight ?? 0,
        endpoints,
      };
    });
  const previous = new Map((before.inbound ?? []).map((i) => [`${i.route}\u0000${i.caller}`, i]));
  const inbound: AdminInboundRow[] = (after.inbound ?? [])
    .map((i) => {
      const b = previous.get(`${i.route}\u0000${i.caller}`);
      const dReq = b === undefined ? i.requests : Math.max(0, i.requests - b.requests);
      const dOk = b === undefined ? i.successes : Math.max(0, i.successes - b.successes);
      const dFail = b === undefined ? i.failures : Math.max(0, i.failures - b.failures);
      const recent = i.recentRequests > 0;
      return {
        route: i.route,
        caller: i.caller,
        // A pair first seen in the second sample has no difference to go by: the mesh's own window rate.
        rps: b === undefined ? i.rps : dReq / seconds,
        successRate: dOk + dFail > 0 ? dOk / (dOk + dFail) : rate(i.successes, i.failures),
        p50Ms: recent ? i.latencyMs.p50 : null,
        p99Ms: recent ? i.latencyMs.p99 : null,
        requests: i.requests,
        failures: i.failures,
        cancelled: i.cancelled,
      };
    })
    .sort((x, y) => (x.route === y.route ? x.caller.localeCompare(y.caller) : x.route.localeCompare(y.route)));
  return { admin, ready, intervalMs: Math.round(elapsedMs), services, inbound };
}

function fmtRate(r: number | null): string {
  if (r === null) return '-';
  const pct = r * 100;
  return `${pct === 100 || pct === 0 ? pct.toFixed(0) : pct.toFixed(2)}%`;
}

function fmtMs(ms: number | null): string {
  if (ms === null) return '-';
  return ms >= 100 ? `${ms.toFixed(0)}ms` : ms >= 10 ? `${ms.toFixed(1)}ms` : `${ms.toFixed(2)}ms`;
}

function fmtRps(rps: number): string {
  return rps >= 100 ? rps.toFixed(0) : rps.toFixed(1);
}

const STATE_ORDER = ['healthy', 'half-open', 'ejected', 'open'];

function stateRank(state: string): number {
  const i = STATE_ORDER.indexOf(state);
  return i === -1 ? STATE_ORDER.length : i;
}

/** The human-readable table of `meshlet status --admin`. */
export function renderAdminStatus(view: AdminStatusView): string {
  const lines = [
    `meshlet process ${view.admin}: ${view.ready ? 'ready' : 'NOT READY (no config yet)'} · rates over ${(view.intervalMs / 1000).toFixed(1)} s`,
    '',
    `outbound: ${plural(view.services.length, 'service')}`,
  ];
  if (view.services.length > 0) {
    lines.push(
      ...table(
        ['SERVICE', 'RPS', 'SUCCESS', 'P50', 'P99', 'IN FLIGHT', 'REQUESTS', 'FAILURES', 'ENDPOINTS'],
        view.services.map((s) => {
          const states = Object.keys(s.endpoints).sort((a, b) => stateRank(a) - stateRank(b));
          const eps = states.map((st) => `${s.endpoints[st]} ${st}`).join(', ') || 'none';
          return [
            s.service,
            fmtRps(s.rps),
            fmtRate(s.successRate),
            fmtMs(s.p50Ms),
            fmtMs(s.p99Ms),
            String(s.inFlight),
            String(s.requests),
            String(s.failures),
            eps,
          ];
        }),
      ),
    );
  }
  lines.push('', `inbound: ${plural(view.inbound.length, 'route/caller pair')}`);
  if (view.inbound.length > 0) {
    lines.push(
      ...table(
        ['ROUTE', 'CALLER', 'RPS', 'SUCCESS', 'P50', 'P99', 'REQUESTS', 'FAILURES', 'CANCELLED'],
        view.inbound.map((i) => [
          i.route,
          i.caller,
          fmtRps(i.rps),
          fmtRate(i.successRate),
          fmtMs(i.p50Ms),
          fmtMs(i.p99Ms),
          String(i.requests),
          String(i.failures),
          String(i.cancelled),
        ]),
      ),
    );
  }
  return lines.join('\n');
}

/**
 * `meshlet status --admin`: exit 0 when the process answered (use the table, or `--json`, to judge
 * it), 2 when its admin endpoint cannot be reached or is not one.
 */
export async function runAdminStatus(opts: AdminStatusOptions, out: Output): Promise<number> {
  const now = opts.now ?? (() => performance.now());
  const sleep = opts.sleep ?? defaultSleep;
  try {
    let before = await readAdminStats(opts.admin);
    let at = now();
    for (;;) {
      await sleep(opts.intervalMs, opts.signal);
      if (opts.signal?.aborted) return 0;
      const ready = (await getJson(opts.admin, '/readyz')).status === 200;
      const after = await readAdminStats(opts.admin);
      const t = now();
      const view = adminStatusView(opts.admin, ready, before, after, t - at);
      if (opts.json) out.stdout(JSON.stringify(view, null, opts.watch ? undefined : 2));
      else out.stdout((opts.watch ? '\x1b[2J\x1b[H' : '') + renderAdminStatus(view));
      if (!opts.watch) return 0;
      before = after;
      at = t;
    }
  } catch (err) {
    if (!(err instanceof UnreachableError)) throw err;
    out.stderr(`meshlet status: ${err.message}`);
    return 2;
  }
}
