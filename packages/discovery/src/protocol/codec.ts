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
  const { Any } = protocolTypes();
  const w = protobuf.Writer.create();
  for (const r of resources) {
    w.uint32(18).fork();
    Any.encode(r, w);
    w.ldelim();
  }
  return { bytes: w.finish(), count: resources.length };
}

export function encodeResponse(res: DiscoveryResponseInput): Buffer {
  const head = protocolTypes().DiscoveryResponse.encode(res).finish();
  const prepared = res.prepared;
  if (prepared === undefined || prepared.bytes.length === 0)
    return Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  return Buffer.concat([head, prepared.bytes], head.length + prepared.bytes.length);
}

/** Decodes a response (throws on malformed bytes: grpc-js then fails the call with INTERNAL). */
export function decodeResponse(bytes: Uint8Array): DiscoveryResponse {
  return protocolTypes().DiscoveryResponse.decode(bytes) as unknown as DiscoveryResponse;
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
