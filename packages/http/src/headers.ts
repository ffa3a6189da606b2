/**
 * Header helpers over the forms undici accepts (a plain object, a flat array, an iterable of
 * pairs, null). Only a header object's own properties are headers: nothing inherited
 * (`constructor`, `toString`, a polluted prototype) is ever read as one.
 */
import { CALLER_HEADER, TIMEOUT_HEADER } from '@meshlet/core';

export type HeaderInput =
  | Record<string, string | string[] | number | undefined | null>
  | Array<string | Buffer>
  | Iterable<[string, string | string[] | undefined]>
  | null
  | undefined;

const hasOwn = Object.prototype.hasOwnProperty;

/** Finds a header (name lower-case) in any form undici accepts; first value wins. */
export function findHeader(headers: HeaderInput, name: string): string | undefined {
  if (headers == null) return undefined;
  if (Array.isArray(headers)) {
    for (let i = 0; i + 1 < headers.length; i += 2) {
      const k = headers[i];
      if (k.length === name.length && sameLower(typeof k === 'string' ? k : String(k), name))
        return String(headers[i + 1]);
    }
    return undefined;
  }
  if (typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
    for (const [k, v] of headers as Iterable<[string, string | string[] | undefined]>) {
      if (k.length === name.length && sameLower(k, name)) {
        return v === undefined ? undefined : Array.isArray(v) ? v[0] : String(v);
      }
    }
    return undefined;
  }
  const obj = headers as Record<string, unknown>;
  if (hasOwn.call(obj, name)) {
    const direct = obj[name];
    if (direct !== undefined && direct !== null) return Array.isArray(direct) ? String(direct[0]) : String(direct);
  }
  for (const k in obj) {
    if (k.length === name.length && hasOwn.call(obj, k) && sameLower(k, name)) {
      const v = obj[k];
      if (v === undefined || v === null) return undefined;
      return Array.isArray(v) ? String(v[0]) : String(v);
    }
  }
  return undefined;
}

/** What the dispatcher needs to know about a request's headers, gathered in one pass. */
export interface HeaderFacts {
  /** The caller set a Host header (the mesh replaces it with the service name). */
  hasHost: boolean;
  /** Content-Length as a number; NaN when absent or not a number. */
  contentLength: number;
  /** An Idempotency-Key header is present (the request may be retried whatever its method). */
  idempotencyKey: boolean;
}

/** Fills `facts` from the headers in a single pass; names are compared only when their length matches. */
export function scanHeaders(headers: HeaderInput, facts: HeaderFacts): void {
  facts.hasHost = false;
  facts.contentLength = NaN;
  facts.idempotencyKey = false;
  if (headers == null) return;
  if (Array.isArray(headers)) {
    for (let i = 0; i + 1 < headers.length; i += 2) note(facts, headers[i], headers[i + 1]);
  } else if (typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
    for (const [k, v] of headers as Iterable<[string, unknown]>) note(facts, k, v);
  } else {
    const obj = headers as Record<string, unknown>;
    for (const k in obj) if (hasOwn.call(obj, k)) note(facts, k, obj[k]);
  }
}

function note(facts: HeaderFacts, key: string | Buffer, value: unknown): void {
  const n = key.length;
  if (n !== 4 && n !== 14 && n !== 15) return;
  // Compared in place, case-insensitively: no lower-cased copy of every header name.
  const k = typeof key === 'string' ? key : String(key);
  if (n === 4) {
    if (sameLower(k, 'host')) facts.hasHost = true;
  } else if (n === 14) {
    if (sameLower(k, 'content-length') && Number.isNaN(facts.contentLength) && value != null) {
      facts.contentLength = Number(Array.isArray(value) ? value[0] : value);
    }
  } else if (sameLower(k, 'idempotency-key')) facts.idempotencyKey = value != null;
}

/** `k` equals the lower-case ASCII `lower` ignoring ASCII case (lengths already equal). */
export function sameLower(k: string, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) {
    const c = k.charCodeAt(i);
    if ((c >= 65 && c <= 90 ? c + 32 : c) !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * The headers every mesh attempt sends: the caller's, as a fresh flat array, without a Host (the
 * pool writes it from the service name) and without `meshlet-timeout` / `meshlet-caller` of the
 * caller's own (those are the mesh's to set), then `meshlet-caller: <caller>` when this process
 * has a service name, then `meshlet-timeout` with an empty value: its slot, the last element, is
 * filled with the remaining budget before each attempt (`HttpRequest.setBudget`).
 */
export function meshHeaders(headers: HeaderInput, caller: string | undefined): string[] {
  const out: string[] = [];
  if (headers != null) {
    if (Array.isArray(headers)) {
      for (let i = 0; i + 1 < headers.length; i += 2) pushOwn(out, String(headers[i]), headers[i + 1]);
    } else if (typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
      for (const [k, v] of headers as Iterable<[string, string | string[] | undefined]>) pushOwn(out, k, v);
    } else {
      const obj = headers as Record<string, unknown>;
      for (const k in obj) if (hasOwn.call(obj, k)) pushOwn(out, k, obj[k]);
    }
  }
  // Nothing of the caller's to send (a plain GET, fetch's empty header list): the list in one
  // allocation of its exact size, rather than an empty array grown by the pushes.
  if (out.length === 0)
    return caller === undefined ? [TIMEOUT_HEADER, ''] : [CALLER_HEADER, caller, TIMEOUT_HEADER, ''];
  if (caller !== undefined) out.push(CALLER_HEADER, caller);
  out.push(TIMEOUT_HEADER, '');
  return out;
}

function pushOwn(out: string[], k: string, v: unknown): void {
  if (v === undefined || v === null) return;
  const n = k.length;
  if (n === 4 && sameLower(k, 'host')) return;
  if (n === TIMEOUT_HEADER.length && sameLower(k, TIMEOUT_HEADER)) return;
  if (n === CALLER_HEADER.length && sameLower(k, CALLER_HEADER)) return;
  if (Array.isArray(v)) for (const x of v) out.push(k, String(x));
  else out.push(k, String(v));
}
