/**
 * The protocol pieces the control server uses, from `@meshlet/discovery/protocol` (one codec for
 * both sides), and the server's service definition: the protocol's own, except that a response
 * may also be a `Buffer` already encoded with `encodeResponse` — the server encodes each
 * (type, version) response once and hands the same bytes to every stream.
 */
import type { ServiceDefinition } from '@grpc/grpc-js';
import { discoveryService, encodeResponse, type DiscoveryResponseInput } from '@meshlet/discovery/protocol';

export {
  SERVICE_TYPE_URL as TYPE_URL_SERVICE,
  ENDPOINT_SET_TYPE_URL as TYPE_URL_ENDPOINT_SET,
  REGISTRATION_TYPE_URL as TYPE_URL_REGISTRATION,
  encodeResponse,
  type DiscoveryRequest,
  type DiscoveryResponseInput,
} from '@meshlet/discovery/protocol';

/** Handler key of the one method. */
export const STREAM_METHOD = 'StreamResources';

/** A response message as the server writes it: encoded once and shared, or encoded per stream. */
export type OutgoingResponse = Buffer | DiscoveryResponseInput;

const method = discoveryService.StreamResources;

export const serverService = {
  [STREAM_METHOD]: {
    ...method,
    responseSerialize: (res: OutgoingResponse): Buffer => (Buffer.isBuffer(res) ? res : encodeResponse(res)),
  },
} satisfies ServiceDefinition;
