/**
 * Wire codec of the stream's two messages and the grpc-js `ServiceDefinition` of
 * `meshlet.v1.AggregatedDiscoveryService`, shared by the control-plane client and the control server.
 */
import type { ServiceDefinition } from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { protocolTypes } from './proto.js';
import type {
  AnyMessage,
  DiscoveryRequest,
  DiscoveryRequestInput,
  DiscoveryResponse,
  DiscoveryResponseInput,
  PreparedResources,
} from './types.js';

/** gRPC path of the one method. */
export const STREAM_RESOURCES_PATH = '/meshlet.v1.AggregatedDiscoveryService/StreamResources';

export function encodeRequest(req: DiscoveryRequestInput): Buffer {
  const bytes = protocolTypes().DiscoveryRequest.encode(req).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Decodes a request (throws on malformed bytes: grpc-js then fails the call with INTERNAL). */
export function decodeRequest(bytes: Uint8Array): DiscoveryRequest {
  const m = protocolTypes().DiscoveryRequest.decode(bytes) as unknown as Record<string, unknown>;
  const rev = m.registrationRevision as unknown;
  if (typeof rev !== 'number') {
    const n =
      rev != null && typeof (rev as { toNumber?: unknown }).toNumber === 'function'
        ? (rev as { toNumber(): number }).toNumber()
        : Number(rev);
    m.registrationRevision = Number.isFinite(n) ? n : 0;
  }
  return m as unknown as DiscoveryRequest;
}

/**
 * Encodes the `resources` field of a response once. Send the result to many clients with
 * `encodeResponse({ versionInfo, typeUrl, nonce, prepared })`: only the few header bytes are
 * encoded per client (protobuf lets a message's fields be concatenated in any order).
 */
export function prepareResources(resources: readonly AnyMessage[]): PreparedResources {
  // google.protobuf.Any by hand: protobufjs's bundled Any names its field `type_url`, not `typeUrl`.
  const w = protobuf.Writer.create();
  for (const r of resources) {
    w.uint32(18).fork();
    if (r.typeUrl !== '') w.uint32(10).string(r.typeUrl);
    if (r.value.length > 0) w.uint32(18).bytes(r.value);
    w.ldelim();
  }
  return { bytes: w.finish(), count: resources.length };
}

export function encodeResponse(res: DiscoveryResponseInput): Buffer {
  const head = protocolTypes()
    .DiscoveryResponse.encode({
      versionInfo: res.versionInfo,
      typeUrl: res.typeUrl,
      nonce: res.nonce,
      errorDetail: res.errorDetail,
      incremental: res.incremental === true,
      removedResources: res.removedResources,
    })
    .finish();
  const parts: Uint8Array[] = [head];
  let length = head.length;
  if (res.resources !== undefined && res.resources.length > 0) {
    const bytes = prepareResources(res.resources).bytes;
    parts.push(bytes);
    length += bytes.length;
  }
  if (res.prepared !== undefined && res.prepared.bytes.length > 0) {
    parts.push(res.prepared.bytes);
    length += res.prepared.bytes.length;
  }
  if (parts.length === 1) return Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  return Buffer.concat(parts, length);
}

/** Decodes a response (throws on malformed bytes: grpc-js then fails the call with INTERNAL). */
export function decodeResponse(bytes: Uint8Array): DiscoveryResponse {
  const m = protocolTypes().DiscoveryResponse.decode(bytes) as unknown as { resources: Array<Record<string, unknown>> };
  const list = m.resources;
  const resources: AnyMessage[] = new Array(list.length);
  for (let i = 0; i < list.length; i++) {
    const r = list[i];
    const typeUrl = r.type_url ?? r.typeUrl;
    const value = r.value;
    resources[i] = {
      typeUrl: typeof typeUrl === 'string' ? typeUrl : '',
      value: value instanceof Uint8Array ? value : new Uint8Array(),
    };
  }
  m.resources = resources as unknown as Array<Record<string, unknown>>;
  const d = m as unknown as { incremental: unknown; removedResources: unknown };
  if (typeof d.incremental !== 'boolean') d.incremental = false;
  if (!Array.isArray(d.removedResources)) d.removedResources = [];
  return m as unknown as DiscoveryResponse;
}

/**
 * `meshlet.v1.AggregatedDiscoveryService` for grpc-js: `server.addService(discoveryService, { StreamResources })`,
 * or a client via `grpc.makeGenericClientConstructor(discoveryService, 'AggregatedDiscoveryService')`.
 * Responses may carry `prepared` resources (see `prepareResources`).
 */
export const discoveryService = {
  StreamResources: {
    path: STREAM_RESOURCES_PATH,
    requestStream: true,
    responseStream: true,
    requestSerialize: encodeRequest,
    requestDeserialize: (b: Buffer) => decodeRequest(b),
    responseSerialize: encodeResponse,
    responseDeserialize: (b: Buffer) => decodeResponse(b),
    originalName: 'streamResources',
  },
} satisfies ServiceDefinition;
