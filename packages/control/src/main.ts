/**
 * The `meshlet` command line (`main`; `cli.ts` runs it, `bin/meshlet.js` imports that).
 *
 *   meshlet control --config mesh.yaml [--port 15010] [--admin-port 15011] [--host 0.0.0.0]
 *   meshlet check [--config file] [--control host:port] [--json]
 *   meshlet endpoints <service> [--control host:port] [--json]
 *   meshlet status [--control host:port] [--json]
 *   meshlet status --admin host:port [--interval 1s] [--watch] [--json]
 *
 * `--control` is the control server's ADMIN address (`host:admin-port`, default
 * 127.0.0.1:15011): the CLI reads the admin endpoint's JSON over HTTP, so it needs no gRPC and
 * sees exactly what `curl` would.
 *
 * Exit codes: 0 all good; 1 problems found (an invalid config file, a failed reload, clients that
 * NACKed or are behind, an unknown service); 2 the control server cannot be reached, or a usage
 * error.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Output } from './commands.js';

export const EXIT_OK = 0;
export const EXIT_PROBLEMS = 1;
export const EXIT_UNREACHABLE = 2;
export const EXIT_USAGE = 2;

/** Default admin address the CLI talks to. */
export const DEFAULT_CONTROL = '127.0.0.1:15011';

const HELP: Record<string, string> = {
  main: `meshlet — the meshlet control server and its command line

Usage:
  meshlet control --config <file> [--port 15010] [--admin-port 15011] [--host 0.0.0.0]
  meshlet check [--config <file>] [--control <host:port>] [--json]
  meshlet endpoints <service> [--control <host:port>] [--json]
  meshlet status [--control <host:port>] [--json]
  meshlet status --admin <host:port> [--interval 1s] [--watch] [--json]
  meshlet help [command]
  meshlet --version

--control is the control server's admin address (host:admin-port), default ${DEFAULT_CONTROL}.
Exit codes: 0 all good, 1 problems found, 2 cannot reach the control server or usage error.
Run "meshlet help <command>" for details.`,
  control: `meshlet control — run the control server

Usage: meshlet control --config <file> [--port 15010] [--admin-port 15011] [--host 0.0.0.0]
                       [--log-level info]

Serves the services, policies and routes of <file> (YAML or JSON, the shape of createMesh's
config) to every meshlet process over gRPC on --port, with DNS-resolved and self-registered
endpoints merged in. The file is watched: a valid edit is pushed to every client; an invalid
one is logged and shown by "meshlet check", and the last good config keeps serving.
Admin HTTP on --admin-port: /healthz /readyz /clients /config /endpoints/<service>.
Logs are JSON lines on stdout. SIGTERM or SIGINT stops it gracefully (exit 0).
Exit 1 if the config file is invalid at start (the message names the file and the path).`,
  check: `meshlet check — validate a config file and check a running control server

Usage: meshlet check [--config <file>] [--control <host:port>] [--json]

With --config: validates the file (the same rules as the server; errors name file and path).
With --control, or without --config: reaches the control server's admin address
(default ${DEFAULT_CONTROL}), checks it is healthy and ready, that its last config reload
succeeded, and lists clients that NACKed a version or are behind.
Exit codes: 0 all good, 1 problems found, 2 cannot reach the control server / usage error.`,
  endpoints: `meshlet endpoints — the endpoints the control server serves for one service

Usage: meshlet endpoints <service> [--control <host:port>] [--json]

Shows each endpoint's address, weight, zone and where it came from (static, dns,
registration). Exit 1 if the service is unknown, 2 if the server cannot be reached.`,
  status: `meshlet status — the control server's state and its clients, or one process's traffic

Usage: meshlet status [--control <host:port>] [--json]
       meshlet status --admin <host:port> [--interval 1s] [--watch] [--json]

With --control (default ${DEFAULT_CONTROL}): the config file, version, last reload error and
every client with the versions it ACKed.

With --admin: one process's meshlet admin endpoint (MESHLET_ADMIN_PORT of meshlet/register,
or startAdminServer). Reads its /stats twice, --interval apart (default 1s; e.g. 500ms, 2s),
and shows per outbound service: requests per second, success rate (over the interval, else
since start), p50/p99 latency (the mesh's recent window), calls in flight and endpoints by
state; then the inbound requests per route and caller. --watch redraws every interval until
Ctrl-C. --json prints the same view as JSON (one line per interval with --watch).

Exit 0 when the server or process answered (use "meshlet check" to gate on problems), 2 if it
cannot be reached or is not what the flag says.`,
};

export async function main(argv: string[], out: Output = defaultOutput()): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h') {
    out.stdout(HELP.main!);
    return command === undefined ? EXIT_USAGE : EXIT_OK;
  }
  if (command === '--version' || command === '-v' || command === 'version') {
    out.stdout(version());
    return EXIT_OK;
  }
  if (command === 'help') {
    const topic = rest[0] ?? 'main';
    const text = HELP[topic];
    if (text === undefined) {
      out.stderr(`meshlet: no help for "${topic}"; commands are control, check, endpoints, status`);
      return EXIT_USAGE;
    }
    out.stdout(text);
    return EXIT_OK;
  }
  if (!(command in HELP) || command === 'main') {
    out.stderr(`meshlet: unknown command "${command}"; run "meshlet --help"`);
    return EXIT_USAGE;
  }
  let parsed;
  try {
    parsed = parse(command, rest);
  } catch (err) {
    out.stderr(`meshlet ${command}: ${(err as Error).message}\nRun "meshlet help ${command}".`);
    return EXIT_USAGE;
  }
  if (parsed.values.help === true) {
    out.stdout(HELP[command]!);
    return EXIT_OK;
  }
  const v = parsed.values;
  const usage = (msg: string): number => {
    out.stderr(`meshlet ${command}: ${msg}\nRun "meshlet help ${command}".`);
    return EXIT_USAGE;
  };
  switch (command) {
    case 'control': {
      if (parsed.positionals.length > 0) return usage(`unexpected argument "${parsed.positionals[0]}"`);
      if (typeof v.config !== 'string') return usage('--config <file> is required');
      const port = portOption(v.port, 'port', 15010);
      const adminPort = portOption(v['admin-port'], 'admin-port', 15011);
      if (typeof port === 'string') return usage(port);
      if (typeof adminPort === 'string') return usage(adminPort);
      // Loaded on use: help, --version and the admin-reading commands need no gRPC server.
      const { runControl } = await import('./run-control.js');
      return runControl(
        {
          configPath: v.config,
          port,
          adminPort,
          host: typeof v.host === 'string' ? v.host : '0.0.0.0',
          logLevel: typeof v['log-level'] === 'string' ? v['log-level'] : 'info',
        },
        out,
      );
    }
    case 'check': {
      if (parsed.positionals.length > 0) return usage(`unexpected argument "${parsed.positionals[0]}"`);
      const control = v.control === undefined && v.config !== undefined ? undefined : controlOption(v.control);
      if (control instanceof Error) return usage(control.message);
      const { runCheck } = await import('./commands.js');
      return runCheck({ config: v.config as string | undefined, control, json: v.json === true }, out);
    }
    case 'endpoints': {
      if (parsed.positionals.length !== 1) return usage('give exactly one service name: meshlet endpoints <service>');
      const control = controlOption(v.control);
      if (control instanceof Error) return usage(control.message);
      const { runEndpoints } = await import('./commands.js');
      return runEndpoints({ service: parsed.positionals[0]!, control, json: v.json === true }, out);
    }
    case 'status': {
      if (parsed.positionals.length > 0) return usage(`unexpected argument "${parsed.positionals[0]}"`);
      if (v.admin !== undefined) {
        if (v.control !== undefined)
          return usage('give --admin (a process) or --control (the control server), not both');
        const admin = addressOption(v.admin, '--admin', 'the admin address of a meshlet process, e.g. 127.0.0.1:9990');
        if (admin instanceof Error) return usage(admin.message);
        const intervalMs = durationOption(v.interval, '--interval', 1000);
        if (typeof intervalMs === 'string') return usage(intervalMs);
        const { runAdminStatus } = await import('./commands.js');
        const watch = v.watch === true;
        const stop = new AbortController();
        const onSigint = (): void => stop.abort();
        if (watch) process.once('SIGINT', onSigint);
        try {
          return await runAdminStatus({ admin, json: v.json === true, intervalMs, watch, signal: stop.signal }, out);
        } finally {
          process.off('SIGINT', onSigint);
        }
      }
      if (v.interval !== undefined || v.watch !== undefined) return usage('--interval and --watch go with --admin');
      const control = controlOption(v.control);
      if (control instanceof Error) return usage(control.message);
      const { runStatus } = await import('./commands.js');
      return runStatus({ control, json: v.json === true }, out);
    }
  }
  return usage('unknown command');
}

type Parsed = { values: Record<string, string | boolean | undefined>; positionals: string[] };

function parse(command: string, args: string[]): Parsed {
  const common = { help: { type: 'boolean', short: 'h' } } as const;
  switch (command) {
    case 'control':
      return parseArgs({
        args,
        strict: true,
        allowPositionals: true,
        options: {
          ...common,
          config: { type: 'string', short: 'c' },
          port: { type: 'string', short: 'p' },
          'admin-port': { type: 'string' },
          host: { type: 'string' },
          'log-level': { type: 'string' },
        },
      });
    case 'check':
      return parseArgs({
        args,
        strict: true,
        allowPositionals: true,
        options: {
          ...common,
          config: { type: 'string', short: 'c' },
          control: { type: 'string' },
          json: { type: 'boolean' },
        },
      });
    case 'status':
      return parseArgs({
        args,
        strict: true,
        allowPositionals: true,
        options: {
          ...common,
          control: { type: 'string' },
          admin: { type: 'string' },
          interval: { type: 'string' },
          watch: { type: 'boolean' },
          json: { type: 'boolean' },
        },
      });
    default:
      return parseArgs({
        args,
        strict: true,
        allowPositionals: true,
        options: { ...common, control: { type: 'string' }, json: { type: 'boolean' } },
      });
  }
}

function portOption(value: unknown, name: string, dflt: number): number | string {
  if (value === undefined) return dflt;
  const n = Number(value);
  if (typeof value !== 'string' || !/^\d+$/.test(value) || n > 65535) {
    return `--${name} must be a port number from 0 to 65535, got "${String(value)}"`;
  }
  return n;
}

/** Parses `host:port`, `[v6]:port` or `http://host:port` into a base URL of the admin endpoint. */
export function controlOption(value: unknown): string | Error {
  return addressOption(
    typeof value === 'string' ? value : DEFAULT_CONTROL,
    '--control',
    `the admin address, e.g. ${DEFAULT_CONTROL}`,
  );
}

/** `host:port`, `[v6]:port` or `http://host:port` → `http://host:port`, or an Error naming `flag`. */
function addressOption(value: unknown, flag: string, what: string): string | Error {
  const raw = typeof value === 'string' ? value.trim() : '';
  const withScheme = /^https?:\/\//i.test(raw) ? raw : `http://${raw}`;
  let url: URL | undefined;
  try {
    url = new URL(withScheme);
  } catch {
    url = undefined;
  }
  if (url === undefined || url.port === '' || url.hostname === '' || (url.pathname !== '/' && url.pathname !== '')) {
    return new Error(`${flag} must be host:port (${what}), got "${raw}"`);
  }
  return `${url.protocol}//${url.host}`;
}

/** `500ms`, `2s`, `1.5s` or a number of ms, from 100 ms to 1 hour; else the usage message. */
function durationOption(value: unknown, flag: string, dflt: number): number | string {
  if (value === undefined) return dflt;
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(String(value).trim());
  const ms = m === null ? NaN : Number(m[1]) * (m[2] === 's' ? 1000 : 1);
  if (!(ms >= 100 && ms <= 3_600_000)) {
    return `${flag} must be a duration from 100ms to 3600s (e.g. 500ms, 2s), got "${String(value)}"`;
  }
  return Math.round(ms);
}

function version(): string {
  // ../package.json from both src/ (tsx) and dist/.
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function defaultOutput(): Output {
  return {
    stdout: (s) => process.stdout.write(s.endsWith('\n') ? s : s + '\n'),
    stderr: (s) => process.stderr.write(s.endsWith('\n') ? s : s + '\n'),
  };
}
