/**
 * One client's stream, server side (xDS state-of-the-world ADS semantics):
 *
 * - The first request must carry `node` with a non-empty `id`; without it the stream is ended
 *   with INVALID_ARGUMENT.
 * - A request for Service or EndpointSet with no `response_nonce` is a subscription: wildcard
 *   when `resource_names` is empty or holds `*` (every resource, the shared pre-encoded bytes),
 *   else only the named resources (encoded for that stream). Every request carries the whole
 *   subscription, so a change of names on an ACK is answered with the current version for the new
 *   names. The server answers with the type's current resources.
 * - A request with a nonce answers the response that had that nonce. A nonce other than the last
 *   one sent for the type is stale (the client answers an older response while a newer one is on
 *   the wire) and is ignored, as xDS requires. With `error_detail` it is a NACK: recorded (node,
 *   version, reason) and logged; the same version is not sent again, the next change is.
 *   Without, it is an ACK of `version_info`.
 * - A Registration request carries the client's whole set: each entry is validated (service name,
 *   address, weight, zone, metadata, as in the config), the valid ones replace the node's set, the
 *   refused ones come back in `error_detail`, and the reply's `version_info` is the revision.
 * - Nothing a client sends can crash the server: undecodable messages end that stream (grpc-js
 *   fails the call), unknown types and malformed fields are logged and ignored.
 *
 * - Incremental responses (discovery.proto, `incremental`): once a wildcard stream has ACKed the
 *   version it was last sent of a type, the next version of that type goes to it as the change
 *   only (the resources added or changed, the names removed), encoded once per version and shared
 *   by every such stream. The first response of a type on a stream, the answer to every
 *   (re)subscription, and any response to a stream that NACKed, has not ACKed yet, skipped a
 *   version or subscribed by name are state of the world.
 *
 * Writes honour back-pressure: while grpc-js's buffer is full, newer versions replace queued ones
 * (state of the world: only the latest matters), so a slow client cannot grow our memory.
 */
import * as grpc from '@grpc/grpc-js';
import { MeshConfigError, validateServiceConfig } from '@meshlet/core';
import type { Logger } from 'pino';
import { SERVED_TYPES, type ServedType, type SnapshotBuilder } from './snapshot.js';
import type { ClientRecord, ControlStore, StoredRegistration } from './store.js';
import {
  TYPE_URL_REGISTRATION,
  type DiscoveryRequest,
  type DiscoveryResponseInput,
  type OutgoingResponse,
} from './wire.js';

/** What a stream needs from its server. */
export interface StreamHost {
  readonly logger: Logger;
  readonly store: ControlStore;
  readonly snapshot: SnapshotBuilder;
  readonly maxRegistrationsPerNode: number;
  streamClosed(stream: ClientStream): void;
  registrationsFrom(stream: ClientStream, nodeId: string, regs: StoredRegistration[]): void;
  storeWrite(result: void | Promise<void>, op: string): void;
}

interface Subscription {
  /** Last nonce sent for the type ('' before any response). */
  nonce: string;
  sentVersion: string;
  /** A newer version must be sent once the write buffer drains. */
  pending: boolean;
  /** Subscribed names; undefined: wildcard (every resource of the type). */
  names: Set<string> | undefined;
  /**
   * The version this stream ACKed for the type since its last (re)subscription, '' if none or
   * if it NACKed since: the version the client holds exactly, the base of an incremental response.
   */
  acked: string;
}

const MAX_NAME_IN_LOG = 200;

export class ClientStream {
  nodeId: string | undefined;
  private record: ClientRecord | undefined;
  private readonly subs = new Map<ServedType, Subscription>();
  private nonce = 0;
  private blocked = false;
  private closed = false;
  private readonly log: Logger;

  constructor(
    readonly id: string,
    private readonly call: grpc.ServerDuplexStream<unknown, unknown>,
    private readonly host: StreamHost,
  ) {
    this.log = host.logger.child({ streamId: id });
    call.on('data', (req: DiscoveryRequest) => {
      try {
        this.onRequest(req);
      } catch (err) {
        // A bug or an input we did not foresee: this stream ends, the server stays up.
        this.log.error(
          { event: 'stream_error', err: (err as Error).message },
          'request handling failed; ending the stream',
        );
        this.fail(grpc.status.INTERNAL, `the control server could not handle a request: ${(err as Error).message}`);
      }
    });
    call.on('drain', () => this.onDrain());
    call.on('end', () => {
      // The client half-closed: end ours too.
      this.end('client ended the stream');
    });
    call.on('error', (err: Error & { code?: number; details?: string }) => {
      const message = err.message ?? err.details;
      this.log.debug({ event: 'stream_error', err: message, code: err.code }, 'stream error');
      this.cleanup(`error: ${message}`);
    });
    call.on('close', () => this.cleanup('closed'));
    call.on('cancelled', () => this.cleanup('cancelled'));
  }

  /** Ends the stream cleanly (status OK), e.g. at shutdown. */
  end(why = 'ended by server'): void {
    if (this.closed) return;
    try {
      this.call.end();
    } catch {
      // already ended
    }
    this.cleanup(why);
  }

  /** Sends the current version of `typeUrl` if the client subscribed to it. */
  push(typeUrl: ServedType): void {
    const sub = this.subs.get(typeUrl);
    if (sub === undefined || this.closed) return;
    if (this.blocked) {
      sub.pending = true;
      return;
    }
    this.send(typeUrl, sub);
  }

  private send(typeUrl: ServedType, sub: Subscription): void {
    const snap = this.host.snapshot.type(typeUrl);
    sub.pending = false;
    const fresh = snap.version !== sub.sentVersion;
    if (!fresh && sub.nonce !== '') return;
    const delta = snap.delta;
    // Incremental only on top of exactly what the client holds: the previous version, sent on
    // this stream after its last (re)subscription and ACKed without a NACK. Anything else (the
    // first response, a resubscription, an ACK still on its way, a NACK, versions skipped while
    // the stream was blocked) gets the state of the world.
    const incremental =
      fresh &&
      sub.nonce !== '' &&
      sub.names === undefined &&
      delta !== undefined &&
      delta.from === sub.sentVersion &&
      sub.acked === sub.sentVersion;
    sub.sentVersion = snap.version;
    let response: OutgoingResponse;
    if (incremental) {
      // The change, encoded once for every stream.
      sub.nonce = delta.nonce;
      response = delta.response;
    } else if (sub.names !== undefined) {
      // Named subscription: only those resources, encoded for this stream (the shared bytes hold
      // them all). Names the server does not have are left out, as xDS does.
      sub.nonce = `${snap.nonce}.${++this.nonce}`;
      const resources = [];
      for (const name of sub.names) {
        const value = snap.encoded.get(name);
        if (value !== undefined) resources.push({ typeUrl, value });
      }
      response = { versionInfo: snap.version, typeUrl, nonce: sub.nonce, resources };
    } else if (fresh) {
      // The shared bytes, encoded once for every stream.
      sub.nonce = snap.nonce;
      response = snap.response;
    } else {
      // The same version again on this stream (a re-subscription): a nonce of its own.
      sub.nonce = `${snap.nonce}.${++this.nonce}`;
      response = { versionInfo: snap.version, typeUrl, nonce: sub.nonce, prepared: snap.prepared };
    }
    if (this.record !== undefined) this.record.sent[typeUrl] = snap.version;
    if (!this.write(response)) this.blocked = true;
  }

  private write(response: OutgoingResponse): boolean {
    try {
      return this.call.write(response);
    } catch (err) {
      this.log.warn({ event: 'write_error', err: (err as Error).message }, 'write failed; ending the stream');
      this.cleanup('write failed');
      return true;
    }
  }

  private onDrain(): void {
    this.blocked = false;
    for (const [typeUrl, sub] of this.subs) {
      if (this.blocked) return;
      if (sub.pending) this.send(typeUrl, sub);
    }
  }

  private onRequest(req: DiscoveryRequest): void {
    if (this.closed) return;
    if (this.record === undefined) {
      const node = req.node;
      if (node === null || typeof node.id !== 'string' || node.id === '') {
        this.log.warn(
          { event: 'bad_request', peer: this.call.getPeer() },
          'first request without node.id; ending the stream',
        );
        this.fail(
          grpc.status.INVALID_ARGUMENT,
          'the first request of a stream must carry node.id (see meshlet.v1.Node)',
        );
        return;
      }
      this.nodeId = node.id.slice(0, MAX_NAME_IN_LOG);
      this.record = {
        streamId: this.id,
        nodeId: this.nodeId,
        service: node.cluster.slice(0, MAX_NAME_IN_LOG),
        zone: node.zone.slice(0, MAX_NAME_IN_LOG),
        peer: this.call.getPeer(),
        userAgent: `${node.userAgentName} ${node.userAgentVersion}`.trim().slice(0, MAX_NAME_IN_LOG),
        connectedAt: Date.now(),
        subscriptions: [],
        acked: {},
        sent: {},
        lastNack: undefined,
      };
      this.host.storeWrite(this.host.store.putClient(this.record), 'putClient');
      this.log.info(
        {
          event: 'connect',
          nodeId: this.nodeId,
          service: this.record.service,
          peer: this.record.peer,
          userAgent: this.record.userAgent,
        },
        'client connected',
      );
    }
    const typeUrl = req.typeUrl;
    if (typeUrl === TYPE_URL_REGISTRATION) {
      this.onRegistrations(req);
      return;
    }
    const served = SERVED_TYPES.find((t) => t === typeUrl);
    if (served === undefined) {
      this.log.warn(
        { event: 'bad_request', nodeId: this.nodeId, typeUrl: String(typeUrl).slice(0, MAX_NAME_IN_LOG) },
        'request for an unknown type; ignored',
      );
      return;
    }
    let sub = this.subs.get(served);
    if (sub === undefined || req.responseNonce === '') {
      // A (re)subscription: answer with the current resources.
      if (sub === undefined) {
        sub = { nonce: '', sentVersion: '', pending: false, names: undefined, acked: '' };
        this.subs.set(served, sub);
        this.record!.subscriptions.push(served);
        this.log.debug(
          { event: 'subscribe', nodeId: this.nodeId, typeUrl: served, version: req.versionInfo },
          'subscribed',
        );
      }
      sub.names = subscriptionNames(req.resourceNames);
      sub.nonce = '';
      sub.acked = '';
      if (this.blocked) sub.pending = true;
      else this.send(served, sub);
      return;
    }
    if (req.responseNonce !== sub.nonce) {
      this.log.debug(
        { event: 'stale_nonce', nodeId: this.nodeId, typeUrl: served, nonce: req.responseNonce, current: sub.nonce },
        'stale nonce; ignored',
      );
      return;
    }
    const rec = this.record!;
    if (req.errorDetail !== null && req.errorDetail !== undefined) {
      const reason = describeNack(req);
      rec.lastNack = { typeUrl: served, version: sub.sentVersion, reason, at: Date.now() };
      sub.acked = '';
      if (req.versionInfo !== '') rec.acked[served] = req.versionInfo;
      this.log.warn(
        {
          event: 'nack',
          nodeId: this.nodeId,
          service: rec.service,
          typeUrl: served,
          version: sub.sentVersion,
          kept: req.versionInfo,
          reason,
        },
        'client rejected a version (NACK)',
      );
    } else {
      rec.acked[served] = req.versionInfo;
      sub.acked = req.versionInfo === sub.sentVersion ? req.versionInfo : '';
      // Debug, not info: at 1000 clients an info line per ACK is 1000 lines per push and ~5% of the
      // server's CPU; `/clients` and `meshlet status` show what each client has ACKed.
      this.log.debug({ event: 'ack', nodeId: this.nodeId, typeUrl: served, version: req.versionInfo }, 'client ACKed');
    }
    this.host.storeWrite(this.host.store.putClient(rec), 'putClient');
    // Every request carries the whole subscription (xDS): a change of names is answered with the
    // current version for the new names.
    const names = subscriptionNames(req.resourceNames);
    if (!sameNames(sub.names, names)) {
      sub.names = names;
      sub.nonce = '';
      sub.acked = '';
      if (this.blocked) sub.pending = true;
      else this.send(served, sub);
    }
  }

  private onRegistrations(req: DiscoveryRequest): void {
    const revision = req.registrationRevision;
    const valid: StoredRegistration[] = [];
    const refused: Array<{ name: string; reason: string }> = [];
    const seen = new Set<string>();
    const now = Date.now();
    const list = Array.isArray(req.registrations) ? req.registrations : [];
    for (let i = 0; i < list.length; i++) {
      const r = list[i]!;
      const service = typeof r.service === 'string' ? r.service : '';
      const ep = r.endpoint;
      const address = ep !== null && ep !== undefined && typeof ep.address === 'string' ? ep.address : '';
      const name = `${service.slice(0, MAX_NAME_IN_LOG)}/${address.slice(0, MAX_NAME_IN_LOG)}`;
      if (i >= this.host.maxRegistrationsPerNode) {
        // One entry for the whole excess keeps the reply small whatever the client sent.
        refused.push({
          name: `registrations[${i}..${list.length - 1}]`,
          reason: `a node may hold at most ${this.host.maxRegistrationsPerNode} registrations; ${list.length - i} refused`,
        });
        break;
      }
      if (ep === null || ep === undefined) {
        refused.push({ name, reason: 'registration has no endpoint' });
        continue;
      }
      const weight = ep.weight === 0 ? 1 : ep.weight;
      const endpoint: Record<string, unknown> = { address, weight };
      if (ep.zone !== '') endpoint.zone = ep.zone;
      if (Object.keys(ep.metadata).length > 0) endpoint.metadata = ep.metadata;
      try {
        validateServiceConfig(service, { endpoints: [endpoint] }, `registrations[${i}]`);
      } catch (err) {
        const reason = err instanceof MeshConfigError ? err.message : `invalid registration: ${(err as Error).message}`;
        refused.push({ name, reason });
        continue;
      }
      const key = `${service} ${address}`;
      if (seen.has(key)) continue;
      seen.add(key);
      valid.push({
        nodeId: this.nodeId!,
        service,
        address,
        weight,
        zone: ep.zone === '' ? undefined : ep.zone,
        metadata: { ...ep.metadata },
        since: now,
      });
    }
    this.host.registrationsFrom(this, this.nodeId!, valid);
    if (refused.length > 0) {
      this.log.warn({ event: 'registration_refused', nodeId: this.nodeId, revision, refused }, 'registrations refused');
    }
    const response: DiscoveryResponseInput = {
      versionInfo: String(revision),
      typeUrl: TYPE_URL_REGISTRATION,
      nonce: `r${++this.nonce}`,
      ...(refused.length > 0
        ? {
            errorDetail: {
              code: grpc.status.INVALID_ARGUMENT,
              message: refused.map((r) => `${r.name}: ${r.reason}`).join('\n'),
              details: refused,
            },
          }
        : {}),
    };
    // Registration replies bypass back-pressure: they are small and the client waits on them.
    this.write(response);
  }

  private fail(code: grpc.status, details: string): void {
    if (this.closed) return;
    this.cleanup(details);
    try {
      // grpc-js ends the call with this status.
      this.call.emit('error', { code, details });
    } catch {
      // the call is gone already
    }
  }

  private cleanup(why: string): void {
    if (this.closed) return;
    this.closed = true;
    if (this.record !== undefined) {
      this.log.info(
        { event: 'disconnect', nodeId: this.nodeId, service: this.record.service, peer: this.record.peer, reason: why },
        'client disconnected',
      );
    }
    this.host.streamClosed(this);
  }
}

/** Most names one subscription may list; more are ignored. */
const MAX_SUBSCRIBED_NAMES = 100_000;

/** `resource_names` → the named set, or undefined for a wildcard (empty, or containing `*`). */
function subscriptionNames(list: unknown): Set<string> | undefined {
  if (!Array.isArray(list) || list.length === 0 || list.includes('*')) return undefined;
  const names = new Set<string>();
  for (const n of list) {
    if (typeof n === 'string') names.add(n);
    if (names.size >= MAX_SUBSCRIBED_NAMES) break;
  }
  return names;
}

function sameNames(a: Set<string> | undefined, b: Set<string> | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.size !== b.size) return false;
  for (const n of a) if (!b.has(n)) return false;
  return true;
}

function describeNack(req: DiscoveryRequest): string {
  const e = req.errorDetail!;
  let reason = typeof e.message === 'string' && e.message !== '' ? e.message : '';
  if (reason === '' && Array.isArray(e.details)) reason = e.details.map((d) => `${d.name}: ${d.reason}`).join('\n');
  if (reason === '') reason = `(no reason given, code ${e.code})`;
  return reason.length > 4096 ? reason.slice(0, 4096) + '…' : reason;
}
