/**
 * One client-runner process (bench/client-runner.ts) seen from the orchestrator: waits for it to be
 * ready, runs rounds of load points in it (a round that does not report within a minute past its
 * own length fails the client and kills it), collects sidecar CPU per point when the setup has
 * proxy processes, and closes it. Used by the HTTP setups (bench/run.ts) and the gRPC ones
 * (bench/grpc.ts).
 */
import type { ChildProcess } from 'node:child_process';
import { processCpuMicros, processRssMiB } from './proc.ts';
import type { ChildMessage, LoadPoint, ParentMessage, PointResult } from './types.ts';

export class ClientHandle {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (r: PointResult) => void; reject: (e: Error) => void }>();
  private proxyCpuStart = 0;
  /** Sidecar CPU in the measurement windows, per point key, summed over rounds. */
  private readonly proxyCpuByKey = new Map<string, number>();
  private readonly keyById = new Map<number, string>();
  private readyPromise: Promise<void>;
  private fatal: Error | undefined;

  constructor(
    /** The client's name in messages (its setup, and its call kind when it has several). */
    readonly name: string,
    readonly child: ChildProcess,
    /** Sidecar pids whose CPU counts against this setup. */
    readonly proxyPids: number[],
  ) {
    this.readyPromise = new Promise((resolve, reject) => {
      child.on('message', (message: ChildMessage) => {
        switch (message.type) {
          case 'ready':
            resolve();
            break;
          case 'window-start':
            this.proxyCpuStart = this.proxyCpu();
            break;
          case 'window-end': {
            const key = this.keyById.get(message.id) ?? '';
            this.proxyCpuByKey.set(key, (this.proxyCpuByKey.get(key) ?? 0) + this.proxyCpu() - this.proxyCpuStart);
            break;
          }
          case 'result':
            this.settle(message.id, message.result);
            break;
          case 'fatal':
            this.fail(new Error(`${name}: ${message.message}`));
            reject(this.fatal);
            break;
        }
      });
      child.once('exit', (code, signal) => {
        this.fail(new Error(`${name}: client process exited (${signal ?? code})`));
        reject(this.fatal);
      });
    });
    // Rejections are observed through ready() and run(); do not crash on an unobserved one, nor on
    // an IPC write to a client that just died (reported through its exit).
    this.readyPromise.catch(() => undefined);
    child.on('error', () => undefined);
  }

  ready(): Promise<void> {
    return this.readyPromise;
  }

  private proxyCpu(): number {
    let sum = 0;
    for (const pid of this.proxyPids) sum += processCpuMicros(pid) ?? 0;
    return sum;
  }

  private settle(id: number, result: PointResult): void {
    const waiter = this.waiting.get(id);
    if (waiter === undefined) return;
    this.waiting.delete(id);
    const key = this.keyById.get(id) ?? '';
    this.keyById.delete(id);
    if (this.proxyPids.length > 0) {
      const cpu = this.proxyCpuByKey.get(key) ?? 0;
      result.proxyCpuUsPerRequest = result.completedInWindows > 0 ? cpu / result.completedInWindows : 0;
      result.proxyRssMiB = this.proxyPids.reduce((sum, pid) => sum + (processRssMiB(pid) ?? 0), 0);
    }
    waiter.resolve(result);
  }

  private fail(err: Error): void {
    this.fatal ??= err;
    for (const waiter of this.waiting.values()) waiter.reject(err);
    this.waiting.clear();
  }

  /**
   * Runs one round of `point`; the result accumulates every round run so far under `key`. A round
   * that does not report within a minute past its own length fails the setup (the process is killed).
   */
  run(key: string, point: LoadPoint): Promise<PointResult> {
    if (this.fatal !== undefined) return Promise.reject(this.fatal);
    const id = this.nextId++;
    this.keyById.set(id, key);
    const limitMs = point.warmupMs + point.durationMs + (point.mode === 'open' ? point.drainMs + 30_000 : 0) + 60_000;
    return new Promise<PointResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(new Error(`${this.name}: no result for ${key} after ${Math.round(limitMs / 1000)} s`));
        this.child.kill('SIGKILL');
      }, limitMs);
      this.waiting.set(id, {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      const message: ParentMessage = { type: 'run', id, key, point };
      this.child.send(message, (err) => {
        if (err !== null) this.fail(new Error(`${this.name}: could not reach the client process (${err.message})`));
      });
    });
  }

  /** Why this client failed, if it did. */
  get failure(): Error | undefined {
    return this.fatal;
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    if (!this.child.connected) {
      // A failed client may be on its way out: nothing to ask it, make sure it goes.
      this.child.kill('SIGKILL');
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.child.kill('SIGKILL');
        resolve();
      }, 5000);
      this.child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      const message: ParentMessage = { type: 'close' };
      this.child.send(message, (err) => {
        if (err !== null) this.child.kill('SIGKILL');
      });
    });
  }
}
