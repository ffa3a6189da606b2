/**
 * `meshlet check`, `meshlet endpoints` and `meshlet status`: they read the control server's admin
 * endpoint (JSON over HTTP) and the config file, and print either lines for humans (√ / ×, in the
 * spirit of `linkerd check`) or one JSON document (`--json`) for scripts.
 */
import { MeshConfigError } from '@meshlet/core';
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
