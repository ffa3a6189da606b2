/**
 * TypeScript shapes of the v1 discovery messages (proto/meshlet/v1/discovery.proto), with
 * protobufjs's camelCase field names. `*Input` types are what you pass to the encoders (every
 * field optional, proto3 defaults apply); the plain names are what the decoders return (every
 * field present, defaults filled in).
 */

/** A JSON value, as carried by `google.protobuf.Struct`. */
export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

/** `google.protobuf.Any`. */
export interface AnyMessage {
  typeUrl: string;
  value: Uint8Array;
}

export interface NodeMessage {
  id: string;
  cluster: string;
  zone: string;
  metadata: Record<string, string>;
  userAgentName: string;
  userAgentVersion: string;
}

export interface ResourceErrorMessage {
  name: string;
  reason: string;
}

/** `google.rpc.Status`, trimmed. */
export interface StatusMessage {
  code: number;
  message: string;
  details: ResourceErrorMessage[];
}

export interface EndpointMessage {
  address: string;
  /** 0 means 1. */
  weight: number;
  zone: string;
  metadata: Record<string, string>;
}

export interface RegistrationMessage {
  service: string;
  endpoint: EndpointMessage | null;
}

export interface DiscoveryRequest {
  versionInfo: string;
  node: NodeMessage | null;
  resourceNames: string[];
  typeUrl: string;
  responseNonce: string;
  errorDetail: StatusMessage | null;
  registrations: RegistrationMessage[];
  /** uint64 on the wire; a number here (revisions stay far below 2^53). */
  registrationRevision: number;
}

export interface DiscoveryResponse {
  versionInfo: string;
  resources: AnyMessage[];
  typeUrl: string;
  nonce: string;
  errorDetail: StatusMessage | null;
  /** true: `resources` holds only the added/changed resources, `removedResources` the removed names. */
  incremental: boolean;
  removedResources: string[];
}

export interface NodeInput {
  id?: string;
  cluster?: string;
  zone?: string;
  metadata?: Record<string, string>;
  userAgentName?: string;
  userAgentVersion?: string;
}

export interface StatusInput {
  code?: number;
  message?: string;
  details?: ResourceErrorMessage[];
}

export interface EndpointInput {
  address?: string;
  weight?: number;
  zone?: string;
  metadata?: Record<string, string>;
}

export interface RegistrationInput {
  service?: string;
  endpoint?: EndpointInput;
}

export interface DiscoveryRequestInput {
  versionInfo?: string;
  node?: NodeInput;
  resourceNames?: string[];
  typeUrl?: string;
  responseNonce?: string;
  errorDetail?: StatusInput;
  registrations?: RegistrationInput[];
  registrationRevision?: number;
}

/**
 * A response to encode. `prepared` (from `prepareResources`) is an already encoded resource list,
 * sent after any `resources`: encode a snapshot once, send it to every client.
 */
export interface DiscoveryResponseInput {
  versionInfo?: string;
  resources?: AnyMessage[];
  typeUrl?: string;
  nonce?: string;
  errorDetail?: StatusInput;
  prepared?: PreparedResources;
  /** An incremental response (see discovery.proto): `resources` are the changes, `removedResources` the removals. */
  incremental?: boolean;
  removedResources?: string[];
}

/** The `resources` field of a response, encoded once (see `prepareResources`). */
export interface PreparedResources {
  /** The encoded field records (tag + length + Any, per resource). */
  readonly bytes: Uint8Array;
  /** How many resources they hold. */
  readonly count: number;
}
