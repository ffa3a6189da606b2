/**
 * The client program bench/instructions.ts runs under `valgrind --tool=callgrind`: it loads one of
 * the bench's client modules (the same request code the wall-clock benches run: bench/clients/*.ts,
 * bench/grpc-client-*.ts) and sends requests in phases, each a closed loop of `concurrency` workers
 * sharing one count of requests left: `warmup` requests (the first RAMP_REQUESTS of them one at a
 * time, see below), then `settle`, then `measured`; then it closes the client and exits. Nothing
 * else: no timers, histograms or IPC.
 *
 * Between phases it calls `process.getegid()`, which nothing else in a client calls: the parent runs
 * valgrind with `--dump-before=*GetEGid*` (node's C++ function behind it), so callgrind writes the
 * counts so far to a file of their own at each phase's end, and the last phase's file holds exactly
 * the instructions of the `measured` requests (start-up, module loading and warm-up are in the
 * earlier files).
 *
 * argv: <spec JSON> (InstructionsClientSpec). Exits 0 when every request succeeded; prints the first
 * error and exits 1 otherwise.
 */
import { pathToFileURL } from 'node:url';
import type { BenchClient, ClientModule } from './lib/types.ts';

export interface InstructionsClientSpec {
  /** Absolute path of a module exporting `setup` (bench/lib/types.ts ClientModule). */
  client: string;
  targets: string[];
  /** The request path (HTTP) or the call kind (gRPC: `unary`). */
  path: string;
  concurrency: number;
  warmup: number;
  settle: number;
  measured: number;
}

/** Ends a phase: callgrind dumps its counts when node's GetEGid is entered (`--dump-before=*GetEGid*`). */
const mark = (): void => {
  process.getegid?.();
};

/** Warm-up requests sent one at a time before the rest of the warm-up runs at the spec's concurrency. */
const RAMP_REQUESTS = 100;

/** Sends `count` requests through `client`, `concurrency` at a time, each worker sending its next when its last ended. */
async function closedLoop(client: BenchClient, count: number, concurrency: number): Promise<void> {
  let left = count;
  const worker = async (): Promise<void> => {
    while (left > 0) {
      left--;
      await client.send();
    }
  };
  const workers: Array<Promise<void>> = [];
  for (let i = 0; i < concurrency; i++) workers.push(worker());
  await Promise.all(workers);
}

async function main(): Promise<void> {
  const raw = process.argv[2];
  if (raw === undefined) throw new Error('instructions-client: expected a spec JSON argument');
  const spec = JSON.parse(raw) as InstructionsClientSpec;
  const mod = (await import(pathToFileURL(spec.client).href)) as ClientModule;
  const client = await mod.setup({ targets: spec.targets, path: spec.path });
  // The first requests run through cold code (interpreted, compiled lazily), ~50× slower again under
  // valgrind: sent one at a time, no request waits behind 63 others long enough to reach the mesh's
  // deadline (15 s by default) on a busy machine.
  const gentle = Math.min(spec.warmup, RAMP_REQUESTS);
  await closedLoop(client, gentle, 1);
  await closedLoop(client, spec.warmup - gentle, spec.concurrency);
  mark();
  await closedLoop(client, spec.settle, spec.concurrency);
  mark();
  await closedLoop(client, spec.measured, spec.concurrency);
  mark();
  await client.close();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  },
);
