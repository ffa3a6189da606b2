/**
 * Parsing a large config file on a worker thread, so the event loop keeps serving requests:
 * the `yaml` parser blocks for about a second per MiB, and a hostile file of the allowed size
 * can take ten seconds and 600 MB. The worker has its own heap limit and a time limit; only the
 * validation that yields the resolved config runs on this thread.
 *
 * Files below `OFF_THREAD_MIN_CHARS` are parsed in place: a fresh worker costs 0.5-1.5 s of
 * start-up (loading core and the parser, a cold JIT), more than parsing a file a person wrote
 * (1000 services × 10 endpoints: 260 KB of YAML, ~0.25 s; as JSON, 30 ms).
 */
import { Worker } from 'node:worker_threads';
import { MeshConfigError } from '@meshlet/core';
import { ConfigFileError, ConfigFileSchemaError, type ConfigFileErrorReason } from './errors.js';

/** Files at least this long (UTF-16 code units) are parsed on a worker thread. */
export const OFF_THREAD_MIN_CHARS = { yaml: 512 * 1024, json: 4 * 1024 * 1024 } as const;

/** Heap limit of the parsing worker. A 4 MiB YAML map of 300 000 small entries needs ~600 MB. */
export const WORKER_HEAP_MB = 1024;

/** Time limit of the parsing worker. */
export const WORKER_TIMEOUT_MS = 60_000;

/** An error crossing the thread boundary (class instances do not survive the structured clone). */
export type SerializedError =
  | {
      kind: 'file';
      reason: ConfigFileErrorReason;
      detail: string;
      line: number | undefined;
      column: number | undefined;
    }
  | {
      kind: 'schema';
      issues: Array<{ path: string; message: string }>;
      line: number | undefined;
      column: number | undefined;
    }
  | { kind: 'other'; message: string };

/** What the worker posts back. */
export type WorkerResult = { ok: true; config: unknown } | { ok: false; error: SerializedError };

export function serializeError(err: unknown): SerializedError {
  if (err instanceof ConfigFileError) {
    return { kind: 'file', reason: err.reason, detail: err.detail, line: err.line, column: err.column };
  }
  if (err instanceof ConfigFileSchemaError) {
    return {
      kind: 'schema',
      issues: err.issues.map((i) => ({ path: i.path, message: i.message })),
      line: err.line,
      column: err.column,
    };
  }
  return { kind: 'other', message: err instanceof Error ? err.message : String(err) };
}

export function deserializeError(error: SerializedError, file: string): Error {
  const where = (e: { line: number | undefined; column: number | undefined }) =>
    e.line !== undefined && e.column !== undefined ? { line: e.line, column: e.column } : undefined;
  switch (error.kind) {
    case 'file':
      return new ConfigFileError(file, error.reason, error.detail, where(error));
    case 'schema':
      return new ConfigFileSchemaError(file, new MeshConfigError(error.issues), where(error));
    default:
      return new ConfigFileError(file, 'syntax', `cannot parse it: ${error.message}`);
  }
}

// CommonJS, as `eval` workers are; it loads the module that defines `parseInWorker` (parse.js)
// by URL, so it works from `dist/` and from an installed package. Run from TypeScript sources
// (the tests, under tsx), that module is parse.ts: Node 20 runs no `--import` preloads in a
// worker, so the worker registers tsx's loader itself (tsx is a dev dependency; published code
// never takes this branch).
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const ready = workerData.module.endsWith('.ts') ? import('tsx/esm/api').then((api) => api.register()) : Promise.resolve();
ready
  .then(() => import(workerData.module))
  .then(
    (m) => parentPort.postMessage(m.parseInWorker(workerData.text, workerData.file, workerData.format, workerData.standalone)),
    (err) => parentPort.postMessage({ ok: false, error: { kind: 'other', message: String((err && err.message) || err) } }),
  );
`;

/**
 * Runs `parseInWorker` of `moduleUrl` on a worker thread and returns the parsed config (JSON
 * values), or rejects with the `ConfigFileError` / `ConfigFileSchemaError` parsing produced, a
 * `ConfigFileError` (`too-large`) when the worker ran out of heap or time, or the signal's reason.
 */
export function parseOffThread(
  moduleUrl: string,
  text: string,
  file: string,
  format: 'json' | 'yaml',
  standalone: boolean,
  signal?: AbortSignal,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    let settled = false;
    let worker: Worker;
    try {
      worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { module: moduleUrl, text, file, format, standalone },
        resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB },
        stdout: true, // nothing the worker prints reaches the process's output
        stderr: true,
      });
    } catch (err) {
      reject(new ConfigFileError(file, 'io', `cannot start a parsing thread: ${(err as Error).message}`));
      return;
    }
    const finish = (outcome: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      void worker.terminate();
      outcome();
    };
    const onAbort = (): void => finish(() => reject(signal!.reason));
    signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(
      () =>
        finish(() =>
          reject(
            new ConfigFileError(
              file,
              'too-large',
              `parsing it took longer than ${WORKER_TIMEOUT_MS / 1000} s: trim the file (a generated config parses faster as JSON)`,
            ),
          ),
        ),
      WORKER_TIMEOUT_MS,
    );
    timer.unref();
    worker.on('message', (result: WorkerResult) =>
      finish(() => (result.ok ? resolve(result.config) : reject(deserializeError(result.error, file)))),
    );
    worker.on('error', (err: Error & { code?: string }) =>
      finish(() =>
        reject(
          err.code === 'ERR_WORKER_OUT_OF_MEMORY'
            ? new ConfigFileError(
                file,
                'too-large',
                `parsing it needed more than ${WORKER_HEAP_MB} MB of memory: trim the file`,
                undefined,
                { cause: err },
              )
            : new ConfigFileError(file, 'syntax', `cannot parse it: ${err.message}`, undefined, { cause: err }),
        ),
      ),
    );
    worker.on('exit', (code) =>
      finish(() =>
        reject(new ConfigFileError(file, 'syntax', `the parsing thread exited (code ${code}) without an answer`)),
      ),
    );
  });
}
