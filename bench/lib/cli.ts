/**
 * What the bench scripts (run.ts, grpc.ts, interleaved.ts) share as programs: reading their flags,
 * keeping track of the processes they start (all killed on every way out), and starting an
 * upstream server process that reports its port over IPC.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const benchDir = fileURLToPath(new URL('..', import.meta.url));

/** Node flags every bench child process runs with (the bench is TypeScript, run by tsx). */
export const TSX = ['--import', 'tsx'];

export interface ArgvReader {
  /** The value after `flag`, if the flag is there. */
  value(flag: string): string | undefined;
  /** The positive number after `flag`, or `fallback` without the flag; throws on anything else. */
  number(flag: string, fallback: number): number;
}

export function readArgv(argv: string[]): ArgvReader {
  const value = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  return {
    value,
    number(flag, fallback) {
      const raw = value(flag);
      if (raw === undefined) return fallback;
      const n = Number(raw);
      if (!Number.isFinite(n) || n <= 0) throw new Error(`${flag}: expected a positive number, got ${raw}`);
      return n;
    },
  };
}

/**
 * The child processes a bench script started: every one still running is killed when the script
 * exits, and on SIGINT, SIGTERM and SIGHUP (then the script exits with 130).
 */
export class BenchChildren {
  private readonly children = new Set<ChildProcess>();

  constructor() {
    process.on('exit', () => this.killAll());
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.on(signal, () => {
        console.error(`\n${signal}: stopping every benchmark process`);
        this.killAll();
        process.exit(130);
      });
    }
  }

  readonly track = (child: ChildProcess): void => {
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
  };

  killAll(): void {
    for (const child of this.children) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }
}

/**
 * Starts `bench/<file>` (an upstream server that sends `{ port }` over IPC once it listens) and
 * resolves with its process and `127.0.0.1:<port>`.
 */
export async function startUpstreamProcess(
  file: string,
  track: (child: ChildProcess) => void,
): Promise<{ child: ChildProcess; address: string }> {
  const child = fork(path.join(benchDir, file), [], { execArgv: TSX, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  track(child);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${file} did not start in 15 s`)), 15_000);
    child.once('message', (message: { port: number }) => {
      clearTimeout(timer);
      resolve(message.port);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${file} exited with ${code} before listening`));
    });
  });
  return { child, address: `127.0.0.1:${port}` };
}

/**
 * Runs `main` when the module at `moduleUrl` is the script node was started with (not when another
 * bench script imports it), and exits: 0 when it resolves, 1 with the error when it rejects.
 */
export function runIfMain(moduleUrl: string, main: () => Promise<void>): void {
  if (process.argv[1] === undefined || moduleUrl !== pathToFileURL(path.resolve(process.argv[1])).href) return;
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err instanceof Error ? (err.stack ?? err.message) : err);
      process.exit(1);
    },
  );
}
