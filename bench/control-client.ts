/**
 * A worker process of `bench/control.ts`: opens `count` streams to a meshlet control server, each a
 * client of its own (own gRPC channel and HTTP/2 connection, own node id), speaking the meshlet.v1
 * protocol through `@meshlet/discovery/protocol`:
 *
 *   1. `StreamResources`, first request `{ node: { id }, typeUrl: Service }`, then `{ typeUrl: EndpointSet }`
 *      (wildcard subscriptions, as `controlPlane()` sends them);
 *   2. every response is decoded and ACKed at once: `{ typeUrl, versionInfo, responseNonce }`.
 *
 * Decoding, by `mode`:
 *   - `decode`: the whole response (`decodeResponse`) and then every resource in it (`decodeResource`:
 *     Service → its config Struct as JSON, EndpointSet → its endpoints), as `controlPlane()` does
 *     before it validates and applies; a resource that fails to decode would be NACKed.
 *   - `header`: only `version_info`, `type_url` and `nonce` are read from the response bytes; the
 *     resources are skipped unread. The lightest client that can still ACK correctly: what is left
 *     of the latency is the server's work and the transport's.
 *
 * Optionally (`real: true`) one more client: a real `createMesh({ discovery: [controlPlane()] })`
 * (node id `bench-real`), which validates every resource and applies the config to a mesh before
 * it ACKs; its ACKs are read from the server's log by the parent.
 *
 * Talks to the parent over IPC: → `{ ready }` once every stream has ACKed both types;
 * ← `{ want: version }` → `{ version, times }` (each stream's ACK send time of that version, ms since
 * the epoch, `performance.timeOrigin + performance.now()`) once all of them have; ← `{ close }`.
 */
import * as grpc from '@grpc/grpc-js';
import { createMesh, type Mesh } from '@meshlet/core';
import { controlPlane } from '@meshlet/discovery';
import {
  ENDPOINT_SET_TYPE_URL,
  SERVICE_TYPE_URL,
  STREAM_RESOURCES_PATH,
  decodeResource,
  decodeResponse,
  encodeRequest,
} from '@meshlet/discovery/protocol';
import protobuf from 'protobufjs';

export interface WorkerArgs {
  port: number;
  /** First client index (node ids are `bench-<index>`). */
  from: number;
  count: number;
  mode: 'decode' | 'header';
  real: boolean;
}

export type ToWorker = { want: string } | { close: true };
export type FromWorker =
  { ready: true; clients: number } | { version: string; times: number[]; nacks: number } | { error: string };

interface Head {
  versionInfo: string;
  typeUrl: string;
  nonce: string;
  /** Resources that failed to decode (mode `decode`). */
  bad: number;
}

/** Reads fields 1 (version_info), 4 (type_url) and 5 (nonce) of a DiscoveryResponse, skipping the rest. */
function readHead(bytes: Buffer): Head {
  const r = protobuf.Reader.create(bytes);
  const head: Head = { versionInfo: '', typeUrl: '', nonce: '', bad: 0 };
  while (r.pos < r.len) {
    const tag = r.uint32();
    const field = tag >>> 3;
    if (field === 1) head.versionInfo = r.string();
    else if (field === 4) head.typeUrl = r.string();
    else if (field === 5) head.nonce = r.string();
    else r.skipType(tag & 7);
  }
  return head;
}

function decodeAll(bytes: Buffer): Head {
  const res = decodeResponse(bytes);
  let bad = 0;
  for (const any of res.resources) if (!decodeResource(any, res.typeUrl).ok) bad++;
  return { versionInfo: res.versionInfo, typeUrl: res.typeUrl, nonce: res.nonce, bad };
}

const now = (): number => performance.timeOrigin + performance.now();

function run(args: WorkerArgs): void {
  const send = (m: FromWorker): void => {
    process.send!(m);
  };
  const definition = {
    StreamResources: {
      path: STREAM_RESOURCES_PATH,
      requestStream: true,
      responseStream: true,
      requestSerialize: encodeRequest,
      requestDeserialize: (b: Buffer) => b,
      responseSerialize: (b: Buffer) => b,
      responseDeserialize: args.mode === 'header' ? readHead : decodeAll,
    },
  } satisfies grpc.ServiceDefinition;
  const Client = grpc.makeGenericClientConstructor(definition, 'AggregatedDiscoveryService');
  /** Per stream: version → ACK send time. Versions are global counters, so one map holds both types. */
  const acked: Array<Map<string, number>> = [];
  const clients: grpc.Client[] = [];
  const calls: grpc.ClientDuplexStream<unknown, Head>[] = [];
  let nacks = 0;
  let wanted: string | undefined;
  let readyDone = false;
  const initial: Array<{ s: boolean; e: boolean }> = [];

  const check = (): void => {
    if (!readyDone) {
      if (initial.every((x) => x.s && x.e)) {
        readyDone = true;
        send({ ready: true, clients: args.count });
      }
      return;
    }
    if (wanted === undefined) return;
    const times: number[] = new Array(args.count);
    for (let i = 0; i < args.count; i++) {
      const t = acked[i]!.get(wanted);
      if (t === undefined) return;
      times[i] = t;
    }
    const version = wanted;
    wanted = undefined;
    send({ version, times, nacks });
  };

  for (let k = 0; k < args.count; k++) {
    const index = args.from + k;
    // A channel of its own (local subchannel pool): one HTTP/2 connection per client, as with one process per client.
    const client = new Client(`127.0.0.1:${args.port}`, grpc.credentials.createInsecure(), {
      'grpc.use_local_subchannel_pool': 1,
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
    });
    clients.push(client);
    const map = new Map<string, number>();
    acked.push(map);
    const init = { s: false, e: false };
    initial.push(init);
    const call = (client as unknown as { StreamResources(): grpc.ClientDuplexStream<unknown, Head> }).StreamResources();
    calls.push(call);
    call.on('data', (head: Head) => {
      if (head.bad > 0) {
        // What a real client would do with resources it cannot decode: NACK them (never expected here).
        nacks++;
        call.write({
          typeUrl: head.typeUrl,
          versionInfo: '',
          responseNonce: head.nonce,
          errorDetail: { code: 3, message: `${head.bad} resources failed to decode`, details: [] },
        });
      } else {
        call.write({ typeUrl: head.typeUrl, versionInfo: head.versionInfo, responseNonce: head.nonce });
      }
      map.set(head.versionInfo, now());
      if (head.typeUrl === SERVICE_TYPE_URL) init.s = true;
      else if (head.typeUrl === ENDPOINT_SET_TYPE_URL) init.e = true;
      check();
    });
    call.on('error', (err: Error) => {
      if (!closing) send({ error: `client bench-${index}: ${err.message}` });
    });
    call.write({
      node: { id: `bench-${index}`, cluster: 'bench', userAgentName: 'meshlet-bench', userAgentVersion: '0' },
      typeUrl: SERVICE_TYPE_URL,
    });
    call.write({ typeUrl: ENDPOINT_SET_TYPE_URL });
  }

  let mesh: Mesh | undefined;
  if (args.real) {
    mesh = createMesh({
      service: 'bench-real',
      discovery: [controlPlane({ address: `127.0.0.1:${args.port}`, node: { id: 'bench-real' } })],
    });
  }

  let closing = false;
  process.on('message', (m: ToWorker) => {
    if ('close' in m) {
      closing = true;
      for (const c of calls) c.cancel();
      for (const c of clients) c.close();
      void (mesh?.close() ?? Promise.resolve()).finally(() => process.exit(0));
      return;
    }
    wanted = m.want;
    check();
  });
  process.on('disconnect', () => process.exit(0));
}

run(JSON.parse(process.argv[2]!) as WorkerArgs);
