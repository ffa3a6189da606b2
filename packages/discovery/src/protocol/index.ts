/**
 * `@meshlet/discovery/protocol`: the v1 discovery protocol's codec, shared by the control-plane
 * client and the control server. See proto/meshlet/v1/discovery.proto.
 */
export type * from './types.js';
export { PROTO_DIR, DISCOVERY_PROTO, protocolTypes, loadProtocolTypes, type ProtocolTypes } from './proto.js';
export { MAX_STRUCT_DEPTH, StructError, encodeStruct, decodeStruct } from './struct.js';
export {
  SERVICE_TYPE_URL,
  ENDPOINT_SET_TYPE_URL,
  REGISTRATION_TYPE_URL,
  MAX_RESOURCE_BYTES,
  MAX_NAME_LENGTH,
  encodeService,
  encodeEndpointSet,
  encodeRegistration,
  decodeRegistration,
  decodeResource,
  peekName,
  shortName,
  type DecodedResource,
  type EndpointJson,
  type ResourceKind,
  type Registration,
} from './resources.js';
export {
  STREAM_RESOURCES_PATH,
  discoveryService,
  encodeRequest,
  decodeRequest,
  encodeResponse,
  decodeResponse,
  prepareResources,
} from './codec.js';
