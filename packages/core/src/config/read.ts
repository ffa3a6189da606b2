/**
 * Reading untrusted config input without trusting it.
 *
 * A config may come from user code, a file or the control server, so it may hold getters that
 * throw, Proxies, revoked Proxies, cyclic or sparse structures, or keys such as `__proto__`. The
 * validator never touches the input directly: it reads one level at a time through these helpers,
 * which copy own enumerable data into null-prototype objects and dense arrays and turn every
 * throw into an issue naming the path. Everything read afterwards is the copy, so no lookup can
 * reach `Object.prototype` (a polluted one included) and no key can reach a prototype setter.
 */
import { MeshConfigError } from '../errors.js';
import { didYouMean } from '../util/suggest.js';

/** One problem in a config: where, and what was expected. */
export type Issue = { path: string; message: string };

/** A null-prototype copy of one level of a config object. */
export type Obj = Record<string, unknown>;

/** Path reported for issues about the config object itself. */
export const ROOT = '(root)';

/**
 * Most items any list in a config may hold (endpoints, routes, backends, retryOn). Bounds the work
 * of validation: an array's `length` is not its size (`[]` with `length = 2 ** 32 - 1` is sparse).
 */
export const MAX_LIST_ITEMS = 100_000;

/** Keys longer than this are shortened in paths, so one huge key cannot make a huge message. */
const MAX_KEY_IN_PATH = 100;

/** Outcome of `readObject` / `readArray` when the value is of another kind or could not be read. */
export const INVALID: unique symbol = Symbol('invalid');

/**
 * Reads one level of an object: own enumerable string keys, in order, into a null-prototype copy.
 * With `known`, other keys are reported as unknown (with a did-you-mean) and their values are not
 * read. Returns `INVALID` (after adding an issue) when `input` is not a plain object or throws.
 */
export function readObject(
  issues: Issue[],
  input: unknown,
  path: string,
  what: string,
  known?: readonly string[],
): Obj | typeof INVALID {
  const kind = kindOf(issues, input, path);
  if (kind === INVALID) return INVALID;
  if (kind !== 'object') {
    issues.push({ path, message: `expected ${what}, got ${show(input)}` });
    return INVALID;
  }
  const source = input as Obj;
  let keys: string[];
  try {
    keys = Object.keys(source);
  } catch (err) {
    issues.push(unreadable(path, err));
    return INVALID;
  }
  const out: Obj = Object.create(null) as Obj;
  const base = path === ROOT ? '' : path;
  for (const key of keys) {
    if (known !== undefined && !known.includes(key)) {
      const hint = didYouMean(key, known);
      issues.push({
        path: join(base, key),
        message: hint !== '' ? `unknown key${hint}` : `unknown key (known keys: ${known.join(', ')})`,
      });
      continue;
    }
    try {
      out[key] = source[key];
    } catch (err) {
      issues.push(unreadable(join(base, key), err));
    }
  }
  return out;
}

/**
 * Reads an array into a dense copy (holes read as `undefined`, so they are reported as missing
 * items). Returns `INVALID` (after adding an issue) when `input` is not an array, is longer than
 * `MAX_LIST_ITEMS`, or throws.
 */
export function readArray(issues: Issue[], input: unknown, path: string, what: string): unknown[] | typeof INVALID {
  const kind = kindOf(issues, input, path);
  if (kind === INVALID) return INVALID;
  if (kind !== 'array') {
    issues.push({ path, message: `expected ${what}, got ${show(input)}` });
    return INVALID;
  }
  const source = input as unknown[];
  let length: number;
  try {
    length = source.length;
  } catch (err) {
    issues.push(unreadable(path, err));
    return INVALID;
  }
  if (length > MAX_LIST_ITEMS) {
    issues.push({ path, message: `expected at most ${MAX_LIST_ITEMS} items, got an array of length ${length}` });
    return INVALID;
  }
  const out: unknown[] = [];
  for (let i = 0; i < length; i++) {
    try {
      // hasOwn: a hole must not read an index inherited from a (polluted) Array.prototype.
      out.push(Object.hasOwn(source, i) ? source[i] : undefined);
    } catch (err) {
      out.push(undefined);
      issues.push(unreadable(`${path}[${i}]`, err));
    }
  }
  return out;
}

/** 'object' (a plain object), 'array', 'other', or `INVALID` when even asking throws (revoked Proxy). */
export function kindOf(issues: Issue[], value: unknown, path: string): 'object' | 'array' | 'other' | typeof INVALID {
  if (typeof value !== 'object' || value === null) return 'other';
  try {
    if (Array.isArray(value)) return 'array';
    return isPlainObject(value) ? 'object' : 'other';
  } catch (err) {
    issues.push(unreadable(path, err));
    return INVALID;
  }
}

/**
 * Reads `obj[key]` where `obj` is not a config copy but a user object whose methods may live on
 * its prototype (a clock, a telemetry provider). Returns `INVALID` after adding an issue on throw.
 */
export function readMember(issues: Issue[], obj: object, key: string, path: string): unknown {
  try {
    return (obj as Obj)[key];
  } catch (err) {
    issues.push(unreadable(join(path, key), err));
    return INVALID;
  }
}

/** Issues saying a value could not be read: later complaints about the same path add nothing. */
const unreadableIssues = new WeakSet<Issue>();

function unreadable(path: string, err: unknown): Issue {
  const issue = {
    path,
    message: `could not be read (${describeError(err)}); pass plain data, not getters or Proxies that throw`,
  };
  unreadableIssues.add(issue);
  return issue;
}

/** Throws one `MeshConfigError` for `issues` when there are any. */
export function throwIfIssues(issues: Issue[]): void {
  if (issues.length > 0) fail(issues);
}

/**
 * Throws one `MeshConfigError` for `issues` (at least one). A path that could not be read keeps
 * only that issue: the checks that then found the value missing would only repeat it.
 */
export function fail(issues: Issue[]): never {
  let unreadablePaths: Set<string> | undefined;
  for (const issue of issues) if (unreadableIssues.has(issue)) (unreadablePaths ??= new Set()).add(issue.path);
  const kept =
    unreadablePaths === undefined
      ? issues
      : issues.filter((i) => unreadableIssues.has(i) || !unreadablePaths.has(i.path));
  throw new MeshConfigError(kept);
}

function describeError(err: unknown): string {
  try {
    if (err instanceof Error) return `${err.name}: ${truncate(String(err.message), 120)}`;
    return `threw ${show(err)}`;
  } catch {
    return 'threw an unprintable value';
  }
}

/** True for `{}`-like objects: prototype null, `Object.prototype`, or another realm's `Object.prototype`. */
export function isPlainObject(value: unknown): value is Obj {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  // The last test accepts plain objects from another realm (vm contexts, workers' structured clones).
  return proto === null || proto === Object.prototype || Object.getPrototypeOf(proto) === null;
}

// ---------------------------------------------------------------------------
// Formatting

/** `services.users`, `services["users.v2"]`: dotted when unambiguous, JSON-quoted otherwise. */
export function join(path: string, key: string): string {
  if (key.length <= MAX_KEY_IN_PATH && /^[A-Za-z0-9_$-]+$/.test(key)) return path === '' ? key : `${path}.${key}`;
  const shown =
    key.length > MAX_KEY_IN_PATH
      ? `${JSON.stringify(key.slice(0, MAX_KEY_IN_PATH))}...(${key.length} characters)`
      : JSON.stringify(key);
  return `${path === '' ? '' : path}[${shown}]`;
}

/**
 * Renders a got-value briefly: numbers and booleans as is, strings JSON-quoted, containers by kind.
 * Never throws, whatever the value (a revoked Proxy, an object whose `constructor` getter throws).
 */
export function show(value: unknown): string {
  switch (typeof value) {
    case 'undefined':
      return 'nothing';
    case 'number':
      return Object.is(value, -0) ? '-0' : String(value);
    case 'boolean':
      return String(value);
    case 'bigint':
      return `${truncate(value.toString(), 40)}n (a bigint)`;
    case 'string':
      return JSON.stringify(truncate(value, 80));
    case 'function':
      return 'a function';
    case 'symbol':
      return 'a symbol';
    default:
      if (value === null) return 'null';
      try {
        if (Array.isArray(value)) return value.length === 0 ? 'an empty array' : 'an array';
        if (isPlainObject(value)) return 'an object';
        const ctor: unknown = (value as { constructor?: unknown }).constructor;
        const name: unknown = typeof ctor === 'function' ? ctor.name : undefined;
        return typeof name === 'string' && name !== '' ? `an instance of ${truncate(name, 40)}` : 'an object';
      } catch {
        return 'an unreadable object';
      }
  }
}

function truncate(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max - 3)}...` : s;
}
