/** The protocol pieces the control server uses, from `@meshlet/discovery/protocol` (one codec for both sides). */
export {
  discoveryService,
  SERVICE_TYPE_URL as TYPE_URL_SERVICE,
  ENDPOINT_SET_TYPE_URL as TYPE_URL_ENDPOINT_SET,
  REGISTRATION_TYPE_URL as TYPE_URL_REGISTRATION,
  type DiscoveryRequest,
  type DiscoveryResponseInput,
} from '@meshlet/discovery/protocol';

/** Handler key of the one method in `discoveryService`. */
export const STREAM_METHOD = 'StreamResources';
