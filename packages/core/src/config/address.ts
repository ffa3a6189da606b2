/**
 * Endpoint addresses: `host:port` with a hostname, an IPv4 address or a bracketed IPv6 address.
 * A semantic check beside the schema (which can only say "a string"), with messages that say what
 * is wrong with the address.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { show } from './read.js';

const HOST_LABEL = /^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;

/** Parses `host:port` / `[v6]:port`; returns the error message when invalid. */
export function parseAddress(s: string): { address: string; host: string; port: number } | string {
  const got = (): string => `got ${show(s)}`; // rendered only for an error message
  // The longest valid address is a 253-character name, ":" and a 5-digit port (or a bracketed IPv6).
  if (s.length > 300) return `expected "host:port" of at most 300 characters, got ${s.length} characters`;
  if (s.includes('/') || s.includes('@')) {
    return `expected "host:port" without scheme, credentials or path (e.g. "10.0.0.1:8080"), ${got()}`;
  }
  let host: string;
  let portText: string;
  let v6 = false;
  if (s.startsWith('[')) {
    const m = /^\[([^\]]*)\](?::(.*))?$/.exec(s);
    if (m === null || !isIPv6(m[1] ?? '')) {
      return `expected a bracketed IPv6 address and a port, e.g. "[::1]:8080", ${got()}`;
    }
    if (m[2] === undefined) return `expected "host:port" (the port is missing), ${got()}`;
    host = m[1]!.toLowerCase();
    portText = m[2];
    v6 = true;
  } else {
    const colon = s.lastIndexOf(':');
    if (colon === -1) return `expected "host:port" (the port is missing), ${got()}`;
    host = s.slice(0, colon);
    portText = s.slice(colon + 1);
    if (host.includes(':')) return `expected an IPv6 address in brackets, e.g. "[::1]:8080", ${got()}`;
    if (!isHost(host)) return `expected a hostname or IPv4 address before ":port", ${got()}`;
    host = host.toLowerCase();
  }
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= 1 && port <= 65535)) return `expected a port from 1 to 65535 in "host:port", ${got()}`;
  return { address: v6 ? `[${host}]:${port}` : `${host}:${port}`, host, port };
}

function isHost(host: string): boolean {
  if (/^[\d.]+$/.test(host)) return isIPv4(host);
  const name = host.endsWith('.') ? host.slice(0, -1) : host; // a fully qualified name may end in "."
  if (name.length === 0 || name.length > 253) return false;
  return name.split('.').every((label) => HOST_LABEL.test(label));
}
