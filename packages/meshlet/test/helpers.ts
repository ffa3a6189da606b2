// Helpers for meshlet's tests: real child processes started with `node --import <built
// meshlet/register> app.mjs` (the build is `npm test`'s first step), real HTTP servers on
// 127.0.0.1 port 0, temp dirs.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The built `meshlet/register` entry (dist, as users get it). */
export const REGISTER = fileURLToPath(new URL('../dist/register.js', import.meta.url));

export class TempDir {
  private constructor(readonly path: string) {}
  static async create(): Promise<TempDir> {
    return new TempDir(await mkdtemp(join(tmpdir(), 'meshlet-umbrella-')));
  }
  async write(name: string, text: string): Promise<string> {
    const p = join(this.path, name);
    await writeFile(p, text);
    return p;
  }
  remove(): Promise<void> {
    return rm(this.path, { recursive: true, force: true });
  }
}

/** The environment of a child: this process's, without any MESHLET_ variable, plus `env`. */
export function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('MESHLET_') && k !== 'NODE_OPTIONS') out[k] = v;
  return { ...out, ...env };
}

export interface Child {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first stdout line matching `re` (rejects if the child exits first). */
  line(re: RegExp): Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `node --import <register> <app>` in `cwd` with `env` (MESHLET_ variables of this process left out). */
export function startApp(cwd: string, app: string, env: Record<string, string>, register = REGISTER): Child {
  const child = spawn(process.execPath, ['--import', register, app], {
    cwd,
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const waiters: Array<() => void> = [];
  child.stdout!.setEncoding('utf8').on('data', (s: string) => {
    out += s;
    for (const w of waiters.splice(0)) w();
  });
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      // Let the last output arrive.
      setImmediate(() => {
        resolve({ code, signal });
        for (const w of waiters.splice(0)) w();
      });
    }),
  );
  let done = false;
  void exited.then(() => (done = true));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    line(re) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const m = out.split('\n').find((l) => re.test(l));
          if (m !== undefined) return resolve(m);
          if (done) return reject(new Error(`the app exited before printing ${re}; stdout: ${out}\nstderr: ${err}`));
          waiters.push(check);
        };
        check();
      });
    },
  };
}

/** Stops apps started with `startApp` (SIGTERM) and waits for each to exit. */
export async function stopApps(apps: Iterable<Child>): Promise<void> {
  for (const app of apps) {
    app.child.kill('SIGTERM');
    await app.exited;
  }
}

/**
 * A mesh config file (YAML) naming one gRPC service over `addresses`, round robin: a split over the
 * endpoints is then exact, so it can be asserted as such (P2C's is a figure, tested elsewhere).
 */
export function roundRobinGrpcService(service: string, addresses: string[]): string {
  return [
    'services:',
    `  ${service}:`,
    '    protocol: grpc',
    '    loadBalancer: round-robin',
    `    endpoints: [${addresses.map((a) => `"${a}"`).join(', ')}]`,
    '',
  ].join('\n');
}

/**
 * Runs an app to its end (killed after `timeoutMs`, a bound for a hung app, not a speed check: an
 * app that starts the mesh twice, in a worker too, was seen to need more than 15 s on a loaded
 * machine).
 */
export async function runApp(
  cwd: string,
  app: string,
  env: Record<string, string>,
  timeoutMs = 60_000,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const c = startApp(cwd, app, env);
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    c.child.kill('SIGKILL');
  }, timeoutMs);
  const { code, signal } = await c.exited;
  clearTimeout(timer);
  const stderr = c.stderr() + (killed ? `\n[${app} killed: still running after ${timeoutMs} ms]` : '');
  return { code, signal, stdout: c.stdout(), stderr };
}

export interface TestServer {
  server: Server;
  address: string;
  port: number;
  close(): Promise<void>;
}

/** An HTTP server on 127.0.0.1, port 0. */
export async function httpServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<TestServer> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    address: `127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A port that was free a moment ago (for addresses a child must know before it starts). */
export async function freePort(): Promise<number> {
  const s = await httpServer(() => undefined);
  await s.close();
  return s.port;
}

/**
 * Polls `fn` until it returns a value other than undefined (fails after `timeoutMs`: a liveness
 * bound, most waits include an app process's start-up, which took over 10 s on a loaded full run).
 */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
