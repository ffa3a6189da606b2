/**
 * The typed resources of the protocol, wrapped in `google.protobuf.Any`: encoders for the
 * control server (trusted input; they throw on what is not JSON) and `decodeResource` for the
 * client (hostile input; it never throws, it returns a typed failure naming the resource).
 */
import protobuf from 'protobufjs';
import type { EndpointConfig, Registration, ServiceConfig } from '@meshlet/core';
import { protocolTypes } from './proto.js';
import { readStruct, setOwn, StructError, writeStruct } from './struct.js';
import type {
  AnyMessage,
  EndpointInput,
  EndpointMessage,
  JsonObject,
  RegistrationInput,
  RegistrationMessage,
} from './types.js';

/** Type URL of a Service resource (a service's config without endpoints). */
export const SERVICE_TYPE_URL = 'type.meshlet.dev/meshlet.v1.Service';
/** Type URL of an EndpointSet resource (a service's endpoints). */
export const ENDPOINT_SET_TYPE_URL = 'type.meshlet.dev/meshlet.v1.EndpointSet';
/** Type URL of registration requests and their replies. */
export const REGISTRATION_TYPE_URL = 'type.meshlet.dev/meshlet.v1.Registration';

/** Largest encoded resource accepted (the Any's value), bytes. */
export const MAX_RESOURCE_BYTES = 1024 * 1024;
/** Longest resource name kept as is in errors and NACKs; longer ones are cut. */
export const MAX_NAME_LENGTH = 1024;

/** A self-registration: core's `Registration` (`mesh.register()`'s argument). */
export type { Registration } from '@meshlet/core';

/** What `decodeResource` returns for each kind. */
export type ResourceKind = 'service' | 'endpointSet';

/** An endpoint as the mesh config writes it (`EndpointConfig`'s object form). */
export interface EndpointJson {
  address: string;
  weight?: number;
  zone?: string;
  metadata?: Record<string, string>;
}

export type DecodedResource =
  | { ok: true; kind: 'service'; name: string; value: JsonObject }
  | { ok: true; kind: 'endpointSet'; name: string; value: EndpointJson[] }
  | { ok: false; name?: string; reason: string };

/** Cuts a hostile name down to something printable in one line. */
export function shortName(name: string): string {
  return name.length > MAX_NAME_LENGTH ? `${name.slice(0, MAX_NAME_LENGTH)}…(${name.length} chars)` : name;
}

// --- encoders ---------------------------------------------------------------------------------

/**
 * A Service resource: `config` is the service's entry of the mesh config; its `endpoints`, if any,
 * are left out (they travel in the EndpointSet). Throws if the config holds a non-JSON value.
 */
export function encodeService(name: string, config: ServiceConfig | JsonObject): AnyMessage {
  const w = protobuf.Writer.create();
  w.uint32(10).string(name);
  w.uint32(18).fork();
  const src = config as Record<string, unknown>;
  let body: object = src;
  if (Object.hasOwn(src, 'endpoints')) {
    const copy: Record<string, unknown> = {};
    for (const k of Object.keys(src)) if (k !== 'endpoints') setOwn(copy, k, src[k]);
    body = copy;
  }
  writeStruct(w, body, 1, '');
  w.ldelim();
  return { typeUrl: SERVICE_TYPE_URL, value: w.finish() };
}

function endpointInput(e: EndpointConfig | EndpointInput): EndpointInput {
  if (typeof e === 'string') return { address: e };
  return e;
}

/** An EndpointSet resource named after `service`. String endpoints are addresses. */
export function encodeEndpointSet(
  service: string,
  endpoints: ReadonlyArray<EndpointConfig | EndpointInput>,
): AnyMessage {
  const { EndpointSet } = protocolTypes();
  const msg = { service, endpoints: endpoints.map(endpointInput) };
  return { typeUrl: ENDPOINT_SET_TYPE_URL, value: EndpointSet.encode(EndpointSet.fromObject(msg)).finish() };
}

/** The wire form of a self-registration (an element of `DiscoveryRequest.registrations`). */
export function encodeRegistration(reg: Registration): RegistrationInput {
  const endpoint: EndpointInput = { address: reg.address };
  if (reg.weight !== undefined) endpoint.weight = reg.weight;
  if (reg.zone !== undefined) endpoint.zone = reg.zone;
  if (reg.metadata !== undefined) endpoint.metadata = { ...reg.metadata };
  return { service: reg.service, endpoint };
}

/**
 * A received registration back as core's `Registration` (for the control server), or a reason
 * it is unusable. Only the shape is checked here; validate the address with core's validator.
 */
export function decodeRegistration(
  msg: RegistrationMessage,
): { ok: true; value: Registration } | { ok: false; reason: string } {
  if (typeof msg.service !== 'string' || msg.service === '')
    return { ok: false, reason: 'registration has no service name' };
  const ep = msg.endpoint;
  if (ep == null || typeof ep.address !== 'string' || ep.address === '')
    return { ok: false, reason: `registration for service "${shortName(msg.service)}" has no endpoint address` };
  const value: Registration = { service: msg.service, address: ep.address };
  if (ep.weight) value.weight = ep.weight;
  if (ep.zone) value.zone = ep.zone;
  const md = copyMetadata(ep.metadata);
  if (md !== undefined) value.metadata = md;
  return { ok: true, value };
}

function copyMetadata(src: Record<string, string> | null | undefined): Record<string, string> | undefined {
  if (src == null) return undefined;
  const keys = Object.keys(src);
  if (keys.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const k of keys) setOwn(out, k, String(src[k]));
  return out;
}

// --- decoder ----------------------------------------------------------------------------------

function fail(reason: string, name?: string): DecodedResource {
  return name === undefined || name === '' ? { ok: false, reason } : { ok: false, name, reason };
}

function decodeServiceBytes(bytes: Uint8Array): DecodedResource {
  const r = protobuf.Reader.create(bytes);
  let name = '';
  let config: JsonObject | undefined;
  let problem: string | undefined;
  try {
    while (r.pos < r.len) {
      const tag = r.uint32();
      if (tag === 10) name = r.string();
      else if (tag === 18) {
        const len = r.uint32();
        const end = r.pos + len;
        if (end > r.len) throw new StructError('', 'the config runs past the end of the resource');
        config = readStruct(r, end, 1, '');
      } else r.skipType(tag & 7);
    }
  } catch (err) {
    problem = err instanceof StructError ? `config ${err.message}` : `undecodable Service bytes (${errText(err)})`;
  }
  if (problem !== undefined) return fail(problem, name);
  if (name === '') return fail('a Service resource without a name');
  return { ok: true, kind: 'service', name, value: config ?? {} };
}

function decodeEndpointSetBytes(bytes: Uint8Array): DecodedResource {
  const { EndpointSet } = protocolTypes();
  let msg: { service: string; endpoints: EndpointMessage[] };
  try {
    msg = EndpointSet.decode(bytes) as unknown as typeof msg;
  } catch (err) {
    return fail(`undecodable EndpointSet bytes (${errText(err)})`);
  }
  const name = msg.service;
  if (name === '') return fail('an EndpointSet resource without a service name');
  const endpoints: EndpointJson[] = [];
  for (const e of msg.endpoints) {
    const ep: EndpointJson = { address: e.address };
    if (e.weight) ep.weight = e.weight;
    if (e.zone) ep.zone = e.zone;
    const md = copyMetadata(e.metadata);
    if (md !== undefined) ep.metadata = md;
    endpoints.push(ep);
  }
  return { ok: true, kind: 'endpointSet', name, value: endpoints };
}

function errText(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.length > 200 ? `${msg.slice(0, 200)}…` : msg;
}

/**
 * Decodes one resource of a response. Never throws: malformed bytes, an unknown type URL, a
 * config that is not plain JSON, too deep (> 32 levels) or too large (> 1 MiB) give
 * `{ ok: false, reason }`, with the resource's `name` whenever it could be read.
 * `expectedTypeUrl`, when given, is the response's type URL: a resource of another type is refused.
 */
export function decodeResource(any: AnyMessage, expectedTypeUrl?: string): DecodedResource {
  try {
    const typeUrl = typeof any?.typeUrl === 'string' ? any.typeUrl : '';
    const value = any?.value;
    if (!(value instanceof Uint8Array)) return fail('a resource without bytes');
    if (expectedTypeUrl !== undefined && typeUrl !== expectedTypeUrl)
      return fail(`a resource of type "${shortName(typeUrl)}" in a response of type "${shortName(expectedTypeUrl)}"`);
    if (value.length > MAX_RESOURCE_BYTES)
      return fail(`resource is ${value.length} bytes, more than the ${MAX_RESOURCE_BYTES} allowed`, peekName(value));
    if (typeUrl === SERVICE_TYPE_URL) return decodeServiceBytes(value);
    if (typeUrl === ENDPOINT_SET_TYPE_URL) return decodeEndpointSetBytes(value);
    return fail(`unknown resource type "${shortName(typeUrl)}"`);
  } catch (err) {
    // Unreachable by design (every decoder catches its own), but a hostile message must never escape.
    return fail(`undecodable resource (${errText(err)})`);
  }
}

/**
 * The name of a Service or EndpointSet (field 1) without decoding the rest; `undefined` if it
 * cannot be read. Never throws. (On the wire a repeated field 1 means the last one wins; this
 * reads the first: use it as a hint, e.g. to find the previous version of a resource.)
 */
export function peekName(bytes: Uint8Array): string | undefined {
  try {
    const r = protobuf.Reader.create(bytes);
    while (r.pos < r.len) {
      const tag = r.uint32();
      if (tag === 10) {
        const len = r.uint32();
        if (len > MAX_NAME_LENGTH * 4) return undefined;
        const start = r.pos;
        r.skip(len);
        return Buffer.from(bytes.buffer, bytes.byteOffset + start, len).toString('utf8') || undefined;
      }
      r.skipType(tag & 7);
    }
  } catch {
    // no name to report
  }
  return undefined;
}
