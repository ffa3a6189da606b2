/**
 * HAProxy as a sidecar on loopback, the comparison the issue asks for: one hop (client →
 * sidecar → upstreams) and the real mesh hop (client → client sidecar → server sidecar →
 * upstream, with one server sidecar per upstream, as each pod would have its own).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, waitForPort } from './proc.ts';

export interface HaproxyInfo {
  bin: string;
  version: string;
}

/** A running set of sidecar processes. */
export interface Sidecars {
  /** `host:port` the client sends to. */
  address: string;
  /** Every HAProxy process of the setup; their CPU is summed. */
  pids: number[];
  /** The sidecar next to the client (the only one with one hop). */
  clientSidePid: number;
  /** The sidecars next to the upstreams (two hops). */
  serverSidePids: number[];
  stop(): Promise<void>;
}

function findHaproxy(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const dir of dirs) {
    if (dir !== '' && existsSync(path.join(dir, 'haproxy'))) return path.join(dir, 'haproxy');
  }
  return undefined;
}

function lastLines(text: string, n: number): string {
  return text.trim().split('\n').slice(-n).join(' | ');
}

/**
 * Finds HAProxy, installing the Debian package when running as root. Returns the reason
 * instead when it cannot, so the benchmark runs the other setups and says why these are missing.
 */
export function ensureHaproxy(log: (line: string) => void): HaproxyInfo | { reason: string } {
  let bin = findHaproxy();
  if (bin === undefined) {
    if (process.platform !== 'linux' || !existsSync('/usr/bin/apt-get')) {
      return { reason: 'haproxy is not installed and there is no apt-get to install it (install HAProxy and rerun)' };
    }
    if (process.getuid?.() !== 0) {
      return {
        reason: 'haproxy is not installed and the benchmark is not root (run `sudo apt-get install -y haproxy`)',
      };
    }
    log('installing haproxy with apt-get (Debian package `haproxy`)...');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const install = (): ReturnType<typeof spawnSync> =>
      spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'haproxy'], { env, encoding: 'utf8' });
    let result = install();
    if (result.status !== 0) {
      // A fresh container has no package lists yet.
      spawnSync('apt-get', ['update'], { env, encoding: 'utf8' });
      result = install();
    }
    bin = findHaproxy();
    if (bin === undefined) {
      return { reason: `apt-get install haproxy failed: ${lastLines(String(result.stderr ?? result.error ?? ''), 3)}` };
    }
  }
  const version = spawnSync(bin, ['-v'], { encoding: 'utf8' });
  const firstLine = (version.stdout ?? '').split('\n')[0] ?? '';
  return { bin, version: /version (\S+)/.exec(firstLine)?.[1] ?? firstLine.trim() };
}

/** The common config: keep-alive on both sides and connection reuse to the next hop, no logging. */
function config(threads: number, listeners: Array<{ name: string; port: number; servers: string[] }>): string {
  const lines = [
    'global',
    // A sidecar gets a slice of the node, not all of it; one thread is HAProxy's most CPU-efficient mode.
    `  nbthread ${threads}`,
    '  maxconn 4096',
    'defaults',
    '  mode http',
    '  option http-keep-alive',
    '  http-reuse always',
    '  timeout connect 5s',
    '  timeout client 300s',
    '  timeout server 300s',
    '  timeout http-keep-alive 300s',
  ];
  for (const listener of listeners) {
    lines.push(`listen ${listener.name}`, `  bind 127.0.0.1:${listener.port}`, '  balance roundrobin');
    listener.servers.forEach((server, i) => lines.push(`  server s${i + 1} ${server}`));
  }
  return lines.join('\n') + '\n';
}

interface HaproxyProcess {
  child: ChildProcess;
  port: number;
}

async function startOne(
  info: HaproxyInfo,
  dir: string,
  name: string,
  servers: string[],
  threads: number,
  track: (child: ChildProcess) => void,
): Promise<HaproxyProcess> {
  const port = await freePort();
  const file = path.join(dir, `${name}.cfg`);
  writeFileSync(file, config(threads, [{ name, port, servers }]));
  // -db: stay in the foreground, so the pid we hold is the proxy itself and dies with our kill.
  const child = spawn(info.bin, ['-db', '-f', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  track(child);
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  try {
    await waitForPort(port, 5000, () => child.exitCode === null && child.signalCode === null);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`haproxy ${name} did not start: ${(err as Error).message}; stderr: ${lastLines(stderr, 3)}`);
  }
  return { child, port };
}

function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/**
 * Starts the sidecars of a setup. `hops` 1: one HAProxy balancing over the upstreams.
 * `hops` 2: a client sidecar balancing over one server sidecar per upstream.
 * `track` receives every child at spawn time, so the orchestrator can kill it on any exit path.
 */
export async function startSidecars(
  info: HaproxyInfo,
  hops: 1 | 2,
  upstreams: string[],
  threads: number,
  track: (child: ChildProcess) => void,
): Promise<Sidecars> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'meshlet-bench-haproxy-'));
  // Also on an interrupted run (the orchestrator kills the processes on exit).
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const procs: HaproxyProcess[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(procs.map((p) => stopProcess(p.child)));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    let servers = upstreams;
    if (hops === 2) {
      const serverSide: HaproxyProcess[] = [];
      for (const [i, upstream] of upstreams.entries()) {
        const p = await startOne(info, dir, `server-sidecar-${i + 1}`, [upstream], threads, track);
        procs.push(p);
        serverSide.push(p);
      }
      servers = serverSide.map((p) => `127.0.0.1:${p.port}`);
    }
    const client = await startOne(info, dir, hops === 2 ? 'client-sidecar' : 'sidecar', servers, threads, track);
    procs.push(client);
    return {
      address: `127.0.0.1:${client.port}`,
      pids: procs.map((p) => p.child.pid ?? -1),
      clientSidePid: client.child.pid ?? -1,
      serverSidePids: procs.filter((p) => p !== client).map((p) => p.child.pid ?? -1),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
