/**
 * TLS to endpoints. An endpoint is dialled by address (`ipv4:10.0.0.7:50051`), but a certificate
 * names a service (`echo`, `echo.internal`, `*.ns.svc.cluster.local`), so with secure credentials
 * the mesh sets the name the handshake sends (SNI) and verifies the certificate against: the
 * client's own `grpc.ssl_target_name_override` if set, else the host of its
 * `grpc.default_authority`, else the meshlet service name (the call's `:authority`). As with
 * Envoy's and gRPC xDS's upstream TLS, the name is the logical service's, never the address.
 *
 * A failed handshake reaches grpc-js as `UNAVAILABLE` "No connection established. Last error:
 * <OpenSSL's words>", which names neither the endpoint nor what to change. `ConnectWatch` wraps
 * the grpc-js call of an attempt made while its endpoint channel is not READY (a call on a READY
 * channel goes out on a connection already verified, unless it drops before the call starts) and
 * rewrites that status — and those of a TLS/plaintext mismatch either way, or a client certificate
 * required or refused — into one naming the endpoint, the service, the name checked and where it
 * came from, and what to set. The code stays `UNAVAILABLE`: the request
 * never left the client, so the mesh retries it on another endpoint (bounded by `maxAttempts`,
 * the retry budget and the deadline), and the failure counts against the endpoint, whose
 * certificate says it is not the service the client wants (outlier detection never ejects them all).
 */
import {
  Metadata,
  status as Status,
  type CallCredentials,
  type ChannelOptions,
  type InterceptingListener,
  type StatusObject,
} from '@grpc/grpc-js';
import type { AuthContext, LowLevelCall, MessageContext } from './grpc-types.js';

/** The name a service's endpoints' certificates are verified against, and where it came from. */
export interface TlsName {
  name: string;
  /** `the service name`, `grpc.ssl_target_name_override` or `grpc.default_authority`. */
  source: string;
}

/** What a handshake failure message is rewritten with: per endpoint channel, made once. */
export interface ConnectInfo {
  service: string;
  /** The endpoint's address as the mesh lists it. */
  address: string;
  /** undefined: insecure credentials. */
  tls: TlsName | undefined;
}

/** The name a client's endpoint certificates are verified against (see the file comment). */
export function tlsName(service: string, options: ChannelOptions): TlsName {
  const override = options['grpc.ssl_target_name_override'];
  if (typeof override === 'string' && override !== '') {
    return { name: override, source: 'grpc.ssl_target_name_override' };
  }
  const authority = options['grpc.default_authority'];
  if (typeof authority === 'string' && authority !== '') {
    return { name: hostOf(authority), source: 'grpc.default_authority' };
  }
  return { name: service, source: 'the service name' };
}

/** The host of `host[:port]` / `[v6]:port`. */
function hostOf(authority: string): string {
  if (authority.startsWith('[')) {
    const end = authority.indexOf(']');
    return end === -1 ? authority : authority.slice(1, end);
  }
  const colon = authority.indexOf(':');
  return colon !== -1 && authority.indexOf(':', colon + 1) === -1 ? authority.slice(0, colon) : authority;
}

const ALTNAME = /altnames|ERR_TLS_CERT_ALTNAME_INVALID/;
const UNTRUSTED =
  /unable to (?:verify|get)[^.]*(?:certificate|issuer)|self[- ]signed certificate|certificate (?:signature failure|has expired|is not yet valid|has been revoked|chain too long)|unsupported certificate purpose|invalid CA certificate|CERT_UNTRUSTED|certificate rejected/i;
const CLIENT_CERT_REQUIRED = /alert certificate required/i;
const CLIENT_CERT_REFUSED =
  /alert (?:bad certificate|unknown ca|certificate unknown|unsupported certificate|certificate expired|certificate revoked|access denied|decrypt error)/i;
const NOT_TLS = /wrong version number|packet length too long|unknown protocol|http request|record layer failure/i;
/** The endpoint closed the connection in the middle of the TLS handshake. */
const HANDSHAKE_CLOSED = /unexpected eof while reading|socket disconnected before secure TLS connection/i;
/** The connection closed before the endpoint's HTTP/2 settings arrived (grpc-js's words). */
const CLOSED_BEFORE_HTTP2 = /Failed to connect \(|Connection closed before starting HTTP\/2/;
/** The connection was reset before HTTP/2 began (a TLS server may reset rather than close). */
const RESET_BEFORE_HTTP2 = /No connection established\. Last error: [^.]*ECONNRESET/;

/** grpc-js's failure text without its prefix and resolution note. */
function lastError(details: string): string {
  let s = details;
  const at = s.indexOf('Last error: ');
  if (at !== -1) s = s.slice(at + 12);
  const note = s.lastIndexOf('. Resolution note:');
  if (note !== -1) s = s.slice(0, note);
  return s.replace(/\s+/g, ' ').trim();
}

/**
 * The details of a connection failure that was a TLS handshake's (or a TLS/plaintext mismatch),
 * rewritten to name the endpoint, the name checked and what to do; undefined for any other status.
 */
export function describeConnectFailure(details: string, info: ConnectInfo): string | undefined {
  const tls = info.tls;
  const at = `endpoint ${info.address} of service "${info.service}"`;
  let text: string;
  if (tls !== undefined) {
    if (ALTNAME.test(details)) {
      const from = tls.source === 'the service name' ? 'the service name' : `from ${tls.source}`;
      const fix =
        tls.source === 'the service name'
          ? 'Set the client option grpc.ssl_target_name_override to a name the certificate has'
          : `Set ${tls.source} to a name the certificate has`;
      text =
        `TLS verification failed for ${at}: its certificate does not name "${tls.name}", the name checked (${from}; ` +
        `never the address dialled). ${fix}, or give the endpoint a certificate for "${tls.name}"`;
    } else if (UNTRUSTED.test(details)) {
      text =
        `TLS verification failed for ${at}: its certificate is not signed by a CA among the client's root certificates ` +
        '(or has expired). Pass the CA that issued it as rootCerts to credentials.createSsl(rootCerts, …), or renew the certificate';
    } else if (CLIENT_CERT_REQUIRED.test(details)) {
      text =
        `TLS handshake with ${at} failed: the endpoint requires a client certificate (mTLS). ` +
        'Pass the client key and certificate to credentials.createSsl(rootCerts, privateKey, certChain)';
    } else if (CLIENT_CERT_REFUSED.test(details)) {
      text =
        `TLS handshake with ${at} failed: the endpoint refused the client certificate. ` +
        'Give the client a certificate issued by a CA the endpoint trusts';
    } else if (NOT_TLS.test(details)) {
      text =
        `TLS handshake with ${at} failed: the endpoint does not answer TLS (it looks like a plaintext server). ` +
        'Build the client for it with credentials.createInsecure(), or serve TLS on the endpoint';
    } else if (HANDSHAKE_CLOSED.test(details)) {
      text =
        `TLS handshake with ${at} failed: the endpoint closed the connection during the handshake. ` +
        'It may not serve TLS (then build the client for it with credentials.createInsecure()), or may have refused the client certificate';
    } else if (CLOSED_BEFORE_HTTP2.test(details) || RESET_BEFORE_HTTP2.test(details)) {
      text =
        `connection to ${at} closed by the endpoint right after the TLS handshake, before HTTP/2 began: ` +
        'it may have refused the client certificate (mTLS: pass one issued by a CA the endpoint trusts to credentials.createSsl) or not serve gRPC there';
    } else return undefined;
  } else if (CLOSED_BEFORE_HTTP2.test(details) || RESET_BEFORE_HTTP2.test(details) || NOT_TLS.test(details)) {
    text =
      `connection to ${at} closed by the endpoint before HTTP/2 began, as a TLS server does with a plaintext client. ` +
      'If the endpoint serves TLS, build the client with credentials.createSsl(rootCerts, …)';
  } else return undefined;
  return `${text} (grpc-js: ${lastError(details)})`;
}

/**
 * A grpc-js call on an endpoint channel that was not READY when the call was made, and the
 * listener of that call: everything passes through, except an `UNAVAILABLE` status whose details
 * `describeConnectFailure` recognises, which goes on with those details instead.
 */
export class ConnectWatch implements LowLevelCall, InterceptingListener {
  private listener: InterceptingListener | undefined = undefined;

  constructor(
    private readonly call: LowLevelCall,
    private readonly info: ConnectInfo,
  ) {}

  start(metadata: Metadata, listener: InterceptingListener): void {
    this.listener = listener;
    this.call.start(metadata, this);
  }

  onReceiveMetadata(metadata: Metadata): void {
    this.listener!.onReceiveMetadata(metadata);
  }

  onReceiveMessage(message: unknown): void {
    this.listener!.onReceiveMessage(message);
  }

  onReceiveStatus(status: StatusObject): void {
    if (status.code === Status.UNAVAILABLE) {
      const details = describeConnectFailure(status.details, this.info);
      if (details !== undefined) status = { code: status.code, details, metadata: status.metadata ?? new Metadata() };
    }
    this.listener!.onReceiveStatus(status);
  }

  sendMessageWithContext(context: MessageContext, message: Buffer): void {
    this.call.sendMessageWithContext(context, message);
  }

  startRead(): void {
    this.call.startRead();
  }

  halfClose(): void {
    this.call.halfClose();
  }

  cancelWithStatus(code: Status, details: string): void {
    this.call.cancelWithStatus(code, details);
  }

  getPeer(): string {
    return this.call.getPeer();
  }

  getCallNumber(): number {
    return this.call.getCallNumber();
  }

  setCredentials(credentials: CallCredentials): void {
    this.call.setCredentials(credentials);
  }

  getAuthContext(): AuthContext {
    return this.call.getAuthContext();
  }
}
