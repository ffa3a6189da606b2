/**
 * `google.protobuf.Struct` ⇄ plain JSON, hand-written over protobufjs's Reader/Writer so the
 * limits are ours: nesting depth ≤ `MAX_STRUCT_DEPTH`, only JSON values (no NaN/Infinity, no
 * Value without a kind), and a key `__proto__` becomes an own property instead of reaching a
 * prototype. Decoding throws `StructError` (or a protobufjs RangeError on truncated bytes);
 * `decodeResource` turns both into a typed failure.
 */
import protobuf from 'protobufjs';
import type { JsonObject, JsonValue } from './types.js';

/** Deepest nesting of objects and arrays accepted in a config Struct. */
export const MAX_STRUCT_DEPTH = 32;

/** A Struct that is not plain JSON within the limits; `path` names where (`retry.backoff`). */
export class StructError extends Error {
  readonly path: string;
  constructor(path: string, message: string) {
    super(`${path === '' ? '(top level)' : path}: ${message}`);
    this.path = path;
    this.name = 'StructError';
  }
}

function child(path: string, key: string): string {
  const safe = /^[A-Za-z_$][\w$]*$/.test(key) ? key : JSON.stringify(key.length > 64 ? `${key.slice(0, 64)}…` : key);
  return path === '' ? safe : safe.startsWith('"') ? `${path}[${safe}]` : `${path}.${safe}`;
}

/** Sets `obj[key] = value` as an own data property, whatever the key (`__proto__` included). */
export function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__')
    Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  else obj[key] = value;
}

// --- encoding ---------------------------------------------------------------------------------

/** Encodes a plain JSON object as the bytes of a `google.protobuf.Struct`. Throws StructError on non-JSON input. */
export function encodeStruct(obj: JsonObject): Uint8Array {
  const w = protobuf.Writer.create();
  writeStruct(w, obj, 1, '');
  return w.finish();
}

/** Writes the fields of a Struct (not its length prefix) to `w`. */
export function writeStruct(w: protobuf.Writer, obj: object, depth: number, path: string): void {
  if (depth > MAX_STRUCT_DEPTH) throw new StructError(path, `nested deeper than ${MAX_STRUCT_DEPTH} levels`);
  for (const key of Object.keys(obj)) {
    const v = (obj as Record<string, unknown>)[key];
    if (v === undefined) continue; // as JSON.stringify does
    // map<string, Value> entry: 1 = key, 2 = value
    w.uint32(10).fork().uint32(10).string(key).uint32(18).fork();
    writeValue(w, v, depth, child(path, key));
    w.ldelim().ldelim();
  }
}

function writeValue(w: protobuf.Writer, v: unknown, depth: number, path: string): void {
  switch (typeof v) {
    case 'string':
      w.uint32(26).string(v);
      return;
    case 'boolean':
      w.uint32(32).bool(v);
      return;
    case 'number':
      if (!Number.isFinite(v)) throw new StructError(path, `${v} is not a JSON number`);
      w.uint32(17).double(v);
      return;
    case 'object':
      if (v === null) {
        w.uint32(8).int32(0);
        return;
      }
      if (Array.isArray(v)) {
        if (depth + 1 > MAX_STRUCT_DEPTH) throw new StructError(path, `nested deeper than ${MAX_STRUCT_DEPTH} levels`);
        w.uint32(50).fork();
        for (let i = 0; i < v.length; i++) {
          w.uint32(10).fork();
          writeValue(w, v[i] === undefined ? null : v[i], depth + 1, `${path}[${i}]`);
          w.ldelim();
        }
        w.ldelim();
        return;
      }
      {
        const proto = Object.getPrototypeOf(v);
        if (proto !== Object.prototype && proto !== null) throw new StructError(path, 'expected a plain object');
      }
      w.uint32(42).fork();
      writeStruct(w, v, depth + 1, path);
      w.ldelim();
      return;
    default:
      throw new StructError(path, `a ${typeof v} is not a JSON value`);
  }
}

// --- decoding ---------------------------------------------------------------------------------

function subEnd(r: protobuf.Reader, end: number): number {
  const len = r.uint32();
  const e = r.pos + len;
  if (e > end) throw new StructError('', 'a length runs past the end of its message');
  return e;
}

function done(r: protobuf.Reader, end: number, path: string): void {
  if (r.pos !== end) throw new StructError(path, 'a field runs past the end of its message');
}

/** Reads the fields of a Struct from `r.pos` up to `end` (depth 1 = the top-level object). */
export function readStruct(r: protobuf.Reader, end: number, depth: number, path: string): JsonObject {
  if (depth > MAX_STRUCT_DEPTH) throw new StructError(path, `nested deeper than ${MAX_STRUCT_DEPTH} levels`);
  const out: JsonObject = {};
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag !== 10) {
      r.skipType(tag & 7);
      continue;
    }
    const e = subEnd(r, end);
    let key = '';
    let value: JsonValue | undefined;
    while (r.pos < e) {
      const t = r.uint32();
      if (t === 10) key = r.string();
      else if (t === 18) {
        const ve = subEnd(r, e);
        value = readValue(r, ve, depth, child(path, key));
      } else r.skipType(t & 7);
    }
    done(r, e, path);
    // A map entry without a value is a Value with no kind: not JSON.
    if (value === undefined) throw new StructError(child(path, key), 'a Value with no kind is not a JSON value');
    setOwn(out, key, value);
  }
  done(r, end, path);
  return out;
}

function readValue(r: protobuf.Reader, end: number, depth: number, path: string): JsonValue {
  let value: JsonValue | undefined;
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case 8: // null_value
        r.int32();
        value = null;
        break;
      case 17: {
        const n = r.double();
        if (!Number.isFinite(n)) throw new StructError(path, `${n} is not a JSON number`);
        value = n;
        break;
      }
      case 26:
        value = r.string();
        break;
      case 32:
        value = r.bool();
        break;
      case 42: {
        const e = subEnd(r, end);
        value = readStruct(r, e, depth + 1, path);
        break;
      }
      case 50: {
        const e = subEnd(r, end);
        value = readList(r, e, depth + 1, path);
        break;
      }
      default:
        r.skipType(tag & 7);
    }
  }
  done(r, end, path);
  if (value === undefined) throw new StructError(path, 'a Value with no kind is not a JSON value');
  return value;
}

function readList(r: protobuf.Reader, end: number, depth: number, path: string): JsonValue[] {
  if (depth > MAX_STRUCT_DEPTH) throw new StructError(path, `nested deeper than ${MAX_STRUCT_DEPTH} levels`);
  const out: JsonValue[] = [];
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag !== 10) {
      r.skipType(tag & 7);
      continue;
    }
    const e = subEnd(r, end);
    out.push(readValue(r, e, depth, `${path}[${out.length}]`));
  }
  done(r, end, path);
  return out;
}

/** Decodes the bytes of a `google.protobuf.Struct` into a plain JSON object. Throws on malformed or over-limit input. */
export function decodeStruct(bytes: Uint8Array): JsonObject {
  const r = protobuf.Reader.create(bytes);
  return readStruct(r, r.len, 1, '');
}
