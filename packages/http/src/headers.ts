/** Header helpers over undici's accepted forms (object, flat array, iterable of pairs, null). */

export type HeaderInput =
  | Record<string, string | string[] | number | undefined | null>
  | Array<string | Buffer>
  | Iterable<[string, string | string[] | undefined]>
  | null
  | undefined;

/** Finds a header (name lower-case) in any form undici accepts; first value wins. */
export function findHeader(headers: HeaderInput, name: string): string | undefined {
  if (headers == null) return undefined;
  if (Array.isArray(headers)) {
    for (let i = 0; i + 1 < headers.length; i += 2) {
      if (String(headers[i]).toLowerCase() === name) return String(headers[i + 1]);
    }
    return undefined;
  }
  if (typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
    for (const [k, v] of headers as Iterable<[string, string | string[] | undefined]>) {
      if (k.toLowerCase() === name) return v === undefined ? undefined : Array.isArray(v) ? v[0] : String(v);
    }
    return undefined;
  }
  const obj = headers as Record<string, unknown>;
  const direct = obj[name];
  if (direct !== undefined && direct !== null) return Array.isArray(direct) ? String(direct[0]) : String(direct);
  for (const k in obj) {
    if (k.length === name.length && k.toLowerCase() === name) {
      const v = obj[k];
      if (v === undefined || v === null) return undefined;
      return Array.isArray(v) ? String(v[0]) : String(v);
    }
  }
  return undefined;
}

/** Returns headers as a fresh flat array with `extra` name/value pairs appended. */
export function withHeaders(headers: HeaderInput, extra: string[]): string[] {
  const out: string[] = [];
  if (headers != null) {
    if (Array.isArray(headers)) {
      for (let i = 0; i < headers.length; i++) out.push(String(headers[i]));
    } else if (typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
      for (const [k, v] of headers as Iterable<[string, string | string[] | undefined]>) pushValue(out, k, v);
    } else {
      const obj = headers as Record<string, string | string[] | number | undefined | null>;
      for (const k in obj) pushValue(out, k, obj[k]);
    }
  }
  for (let i = 0; i < extra.length; i++) out.push(extra[i]);
  return out;
}

function pushValue(out: string[], k: string, v: string | string[] | number | undefined | null): void {
  if (v === undefined || v === null) return;
  if (Array.isArray(v)) for (const x of v) out.push(k, String(x));
  else out.push(k, String(v));
}
