/**
 * The schema walker: checks untrusted input against the config schema (`schema.ts`) and returns a
 * checked copy, adding one issue per mistake with its exact path.
 *
 * The schema is compiled once, at import, into a tree of small nodes (keys, bounds, patterns,
 * messages); a call then walks that tree and the input together. It reads the input only through
 * `read.ts` (one level at a time, into null-prototype copies), and only where the schema has a
 * key: the value of an unknown key is never read, a getter or Proxy that throws becomes an issue,
 * and nothing is read from a prototype. Where a value is wrong, the copy holds `INVALID`, so a
 * check that depends on it (maxMs >= baseMs) can stay quiet instead of adding a second issue.
 *
 * Semantic checks the schema cannot express are functions named by the schema's `x-check`
 * keyword (see `validate.ts`); each runs when its node has been walked, so every issue is reported
 * in the order of the document, and may replace the node's copy with its resolved form.
 *
 * Why not TypeBox's compiled validator (`Compile(schema).Check`)? It reads the input directly
 * (`"retry" in value` sees a polluted `Object.prototype`; getters and Proxy traps run), so it could
 * only run on the copy this walk makes anyway; it only answers yes or no (its `Errors()` list one
 * error per union branch, which would still need this walk to become one precise message); and
 * on the 1000 services × 10 endpoints of `bench/config-validate.ts` its check alone takes ~7 ms
 * where this whole validation (copy, checks, resolution) takes ~17 ms, so as a fast path it
 * would only add time. `test/config/schema.test.ts` runs the compiled validator on the published
 * JSON Schema, to keep it and this walk in agreement.
 */
import type { TSchema } from 'typebox';
import { didYouMean } from '../util/suggest.js';
import { INVALID, type Issue, join, kindOf, type Obj, readArray, readObject, ROOT, show } from './read.js';

/** What a check sees besides the value: where issues go, and the service being checked. */
export interface WalkContext {
  issues: Issue[];
  /** Name of the service being checked (for messages such as retryOn's). */
  service: string;
  /** Names route backends may target; undefined: any well-formed name. */
  known: ReadonlySet<string> | undefined;
}

/**
 * A semantic check: gets the walked copy (children already checked, bad ones `INVALID`) and
 * returns it, its resolved form, or `INVALID` (after adding an issue).
 */
export type Check = (value: any, path: string, ctx: WalkContext) => unknown;

/**
 * A check of one key of a record, before its value is walked. Returns false to skip the value.
 * `seen` is per record (e.g. for duplicates that differ only in case).
 */
export type KeyCheck = (key: string, path: string, ctx: WalkContext, seen: Set<string>) => boolean;

export interface NumberSpec {
  integer?: boolean;
  min?: number;
  minExclusive?: boolean;
  /** Names the bound when it comes from another key, e.g. `baseMs (25)`. */
  minLabel?: string | undefined;
  /** With `minLabel`: the key's own lower bound, shown when the value is above `max`. */
  floor?: number;
  max?: number;
  maxLabel?: string | undefined;
}

export type Node =
  | ObjectNode
  | RecordNode
  | ArrayNode
  | { kind: 'number'; spec: NumberSpec; check: Check | undefined }
  | { kind: 'boolean'; value: boolean | undefined }
  | StringNode
  | { kind: 'enum'; values: readonly string[] }
  | UnionNode
  | { kind: 'any'; check: Check | undefined };

export interface ObjectNode {
  kind: 'object';
  keys: string[];
  /** `.key` when the key needs no quoting in a path, else undefined (then `join` quotes it). */
  suffixes: Array<string | undefined>;
  props: Node[];
  required: boolean[];
  expected: string;
  check: Check | undefined;
}

interface RecordNode {
  kind: 'record';
  value: Node;
  expected: string;
  keyCheck: KeyCheck | undefined;
  check: Check | undefined;
}

interface ArrayNode {
  kind: 'array';
  items: Node;
  minItems: number;
  expected: string;
  check: Check | undefined;
}

interface StringNode {
  kind: 'string';
  minLength: number;
  maxLength: number;
  pattern: RegExp | undefined;
  expected: string;
  check: Check | undefined;
}

interface UnionNode {
  kind: 'union';
  string: Node | undefined;
  number: Node | undefined;
  boolean: Node | undefined;
  array: Node | undefined;
  objects: ObjectNode[];
  /** Every key of the object branches, for unknown-key reports when several branches are objects. */
  objectKeys: string[];
  expected: string;
  check: Check | undefined;
}

type Schema = TSchema & Record<string, any>;

/** Compiles a schema into walker nodes. `checks` and `keyChecks` resolve `x-check` and `x-key`. */
export function compileSchema(
  schema: TSchema,
  checks: Readonly<Record<string, Check>>,
  keyChecks: Readonly<Record<string, KeyCheck>> = {},
): Node {
  const compile = (s: Schema): Node => {
    const checkName = s['x-check'] as string | undefined;
    let check: Check | undefined;
    if (checkName !== undefined) {
      check = checks[checkName];
      if (check === undefined) throw new Error(`schema names an unknown check "${checkName}"`);
    }
    const expected = s['x-expected'] as string | undefined;
    if (s['x-deferred'] === true) return { kind: 'any', check };
    if (Array.isArray(s.anyOf)) {
      const node: UnionNode = {
        kind: 'union',
        string: undefined,
        number: undefined,
        boolean: undefined,
        array: undefined,
        objects: [],
        objectKeys: [],
        expected: expected ?? 'a value of another kind',
        check,
      };
      for (const branch of s.anyOf as Schema[]) {
        const b = compile(branch);
        if (b.kind === 'object') {
          node.objects.push(b);
          for (const k of b.keys) if (!node.objectKeys.includes(k)) node.objectKeys.push(k);
        } else if (b.kind === 'string' || b.kind === 'enum') node.string = b;
        else if (b.kind === 'number') node.number = b;
        else if (b.kind === 'boolean') node.boolean = b;
        else if (b.kind === 'array') node.array = b;
        else throw new Error(`unsupported union branch ${b.kind}`);
      }
      if (node.objects.length > 1 && node.objects.some((o) => o.keys.length !== 1 || !o.required[0])) {
        throw new Error('a union of several objects must tell them apart by one required key each');
      }
      return node;
    }
    if (Array.isArray(s.enum)) return { kind: 'enum', values: s.enum as string[] };
    switch (s.type) {
      case 'object': {
        if (s.patternProperties !== undefined) {
          const values = Object.values(s.patternProperties as Record<string, Schema>);
          if (values.length !== 1) throw new Error('a record needs exactly one value schema');
          const keyName = s['x-key'] as string | undefined;
          const keyCheck = keyName === undefined ? undefined : keyChecks[keyName];
          if (keyName !== undefined && keyCheck === undefined) throw new Error(`unknown key check "${keyName}"`);
          return { kind: 'record', value: compile(values[0]!), expected: expected ?? 'an object', keyCheck, check };
        }
        const properties = (s.properties ?? {}) as Record<string, Schema>;
        const required = new Set((s.required ?? []) as string[]);
        const keys = Object.keys(properties);
        return {
          kind: 'object',
          keys,
          suffixes: keys.map((k) => (join('x', k) === `x.${k}` ? `.${k}` : undefined)),
          props: keys.map((k) => compile(properties[k]!)),
          required: keys.map((k) => required.has(k)),
          expected: expected ?? 'an object',
          check,
        };
      }
      case 'array':
        return {
          kind: 'array',
          items: compile(s.items as Schema),
          minItems: (s.minItems as number | undefined) ?? 0,
          expected: expected ?? 'an array',
          check,
        };
      case 'integer':
      case 'number': {
        const why = s['x-why'] as string | undefined;
        const spec: NumberSpec = { integer: s.type === 'integer' };
        if (s.minimum !== undefined) spec.min = s.minimum as number;
        if (s.exclusiveMinimum !== undefined) {
          spec.min = s.exclusiveMinimum as number;
          spec.minExclusive = true;
        }
        if (s.maximum !== undefined) spec.max = s.maximum as number;
        if (why !== undefined) spec.maxLabel = `${spec.max} (${why})`;
        return { kind: 'number', spec, check };
      }
      case 'boolean':
        return { kind: 'boolean', value: s.const as boolean | undefined };
      case 'string': {
        if (typeof s.const === 'string') return { kind: 'enum', values: [s.const] };
        const minLength = (s.minLength as number | undefined) ?? 0;
        return {
          kind: 'string',
          minLength,
          maxLength: (s.maxLength as number | undefined) ?? Infinity,
          pattern: s.pattern === undefined ? undefined : new RegExp(s.pattern as string),
          expected: expected ?? (minLength > 0 ? 'a non-empty string' : 'a string'),
          check,
        };
      }
      default:
        throw new Error(`unsupported schema ${JSON.stringify(s)}`);
    }
  };
  return compile(schema as Schema);
}

/**
 * Walks `input` against `node`: returns the checked copy (or what the node's check made of it),
 * or `INVALID` after adding issues. `override` replaces a leaf's "expected" wording when the leaf
 * is one branch of a union (`successRate: true` is "expected false (disabled) or an object").
 */
export function walk(node: Node, input: unknown, path: string, ctx: WalkContext, override?: string): unknown {
  const issues = ctx.issues;
  switch (node.kind) {
    case 'object': {
      const obj = readObject(issues, input, path, node.expected, node.keys);
      if (obj === INVALID) return INVALID;
      return walkProps(node, obj, path, ctx);
    }
    case 'record': {
      const obj = readObject(issues, input, path, node.expected);
      if (obj === INVALID) return INVALID;
      const base = path === ROOT ? '' : path;
      const seen = node.keyCheck === undefined ? undefined : new Set<string>();
      for (const key of Object.keys(obj)) {
        const keyPath = join(base, key);
        if (seen !== undefined && !node.keyCheck!(key, keyPath, ctx, seen)) {
          obj[key] = INVALID;
          continue;
        }
        obj[key] = walk(node.value, obj[key], keyPath, ctx);
      }
      return node.check === undefined ? obj : node.check(obj, path, ctx);
    }
    case 'array': {
      const items = readArray(issues, input, path, node.expected);
      if (items === INVALID) return INVALID;
      if (items.length < node.minItems) {
        issues.push({ path, message: `expected ${node.expected}, got ${show(input)}` });
        return INVALID;
      }
      const item = node.items;
      for (let i = 0; i < items.length; i++) items[i] = walk(item, items[i], `${path}[${i}]`, ctx);
      return node.check === undefined ? items : node.check(items, path, ctx);
    }
    case 'number': {
      const n = checkNumber(issues, input, path, node.spec);
      if (Number.isNaN(n)) return INVALID;
      return node.check === undefined ? n : node.check(n, path, ctx);
    }
    case 'boolean':
      if (typeof input === 'boolean' && (node.value === undefined || input === node.value)) return input;
      issues.push({
        path,
        message: `expected ${override ?? (node.value === undefined ? 'true or false' : String(node.value))}, got ${show(input)}`,
      });
      return INVALID;
    case 'string': {
      if (typeof input === 'string') {
        if (input.length > node.maxLength) {
          issues.push({
            path,
            message: `expected ${override ?? node.expected} of at most ${node.maxLength} characters, got ${input.length} characters`,
          });
          return INVALID;
        }
        if (input.length >= node.minLength && (node.pattern === undefined || node.pattern.test(input))) {
          return node.check === undefined ? input : node.check(input, path, ctx);
        }
      }
      issues.push({ path, message: `expected ${override ?? node.expected}, got ${show(input)}` });
      return INVALID;
    }
    case 'enum': {
      if (typeof input === 'string' && node.values.includes(input)) return input;
      const hint = typeof input === 'string' ? didYouMean(input, node.values) : '';
      const expected = override ?? `one of ${node.values.map((a) => `"${a}"`).join(', ')}`;
      issues.push({ path, message: `expected ${expected}, got ${show(input)}${hint}` });
      return INVALID;
    }
    case 'union':
      return walkUnion(node, input, path, ctx);
    case 'any':
      return node.check === undefined ? input : node.check(input, path, ctx);
  }
}

function walkProps(node: ObjectNode, obj: Obj, path: string, ctx: WalkContext): unknown {
  const root = path === ROOT;
  const { keys, props, required, suffixes } = node;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    const value = obj[key];
    // Absent (or explicitly undefined): only a required key is walked, to report "got nothing".
    if (value === undefined && !required[i]) continue;
    const suffix = suffixes[i];
    const keyPath = root ? join('', key) : suffix !== undefined ? path + suffix : join(path, key);
    obj[key] = walk(props[i]!, value, keyPath, ctx);
  }
  return node.check === undefined ? obj : node.check(obj, path, ctx);
}

function walkUnion(node: UnionNode, input: unknown, path: string, ctx: WalkContext): unknown {
  const issues = ctx.issues;
  const kind = kindOf(issues, input, path);
  if (kind === INVALID) return INVALID;
  let result: unknown;
  if (kind === 'object' && node.objects.length === 1) {
    result = walk(node.objects[0]!, input, path, ctx);
  } else if (kind === 'object' && node.objects.length > 1) {
    // Branches told apart by their one required key: exactly one of them must be present.
    const before = issues.length;
    const obj = readObject(issues, input, path, node.expected, node.objectKeys);
    if (obj === INVALID) return INVALID;
    let branch: ObjectNode | undefined;
    let present: string[] | undefined;
    for (const b of node.objects) {
      if (obj[b.keys[0]!] === undefined) continue;
      if (branch === undefined) branch = b;
      else (present ??= [branch.keys[0]!]).push(b.keys[0]!);
    }
    if (branch === undefined || present !== undefined) {
      // With only unknown (or unreadable) keys, readObject has reported them already.
      if (present !== undefined || issues.length === before) {
        const got = present !== undefined ? present.join(' and ') : 'an empty object';
        issues.push({ path, message: `expected ${node.expected}, got ${got}` });
      }
      return INVALID;
    }
    const key = branch.keys[0]!;
    const only = Object.create(null) as Obj;
    only[key] = obj[key];
    result = walkProps(branch, only, path, ctx);
  } else {
    const branch =
      kind === 'array'
        ? node.array
        : kind === 'object'
          ? undefined
          : typeof input === 'string'
            ? node.string
            : typeof input === 'number'
              ? node.number
              : typeof input === 'boolean'
                ? node.boolean
                : undefined;
    if (branch === undefined) {
      issues.push({ path, message: `expected ${node.expected}, got ${show(input)}` });
      return INVALID;
    }
    result = walk(branch, input, path, ctx, node.expected);
  }
  return result === INVALID || node.check === undefined ? result : node.check(result, path, ctx);
}

/**
 * Checks a number against `spec`; returns it (-0 as 0), or NaN after adding an issue.
 * Messages: too low says `>= min` (`expected an integer >= 1, got 0`); too high gives the whole
 * range (`expected an integer from 1 to 2147483647, got 3000000000`); not a number gives both.
 */
export function checkNumber(issues: Issue[], value: unknown, path: string, spec: NumberSpec): number {
  // The common case first, before any message text is built.
  if (
    typeof value === 'number' &&
    (spec.integer === true ? Number.isSafeInteger(value) : Number.isFinite(value)) &&
    (spec.min === undefined || (spec.minExclusive === true ? value > spec.min : value >= spec.min)) &&
    (spec.max === undefined || value <= spec.max)
  ) {
    return value === 0 ? 0 : value; // -0 becomes 0: it prints as 0 and divides like 0 everywhere after
  }
  const kind = spec.integer === true ? 'an integer' : 'a number';
  const lo =
    spec.min === undefined ? undefined : `${spec.minExclusive === true ? '>' : '>='} ${spec.minLabel ?? spec.min}`;
  const hi = spec.max === undefined ? undefined : `<= ${spec.maxLabel ?? spec.max}`;
  let message: string | undefined;
  const n = typeof value === 'number' ? value : NaN;
  if (!Number.isFinite(n) || (spec.integer === true && !Number.isSafeInteger(n))) {
    const range =
      lo !== undefined && hi !== undefined
        ? spec.minLabel === undefined && spec.minExclusive !== true
          ? ` from ${spec.min} to ${spec.maxLabel ?? spec.max}`
          : ` ${lo} and ${hi}`
        : lo !== undefined
          ? ` ${lo}`
          : hi !== undefined
            ? ` ${hi}`
            : '';
    message = `expected ${kind}${range}, got ${show(value)}`;
  } else if (spec.min !== undefined && (spec.minExclusive === true ? n <= spec.min : n < spec.min)) {
    message = `expected ${kind} ${lo}, got ${show(value)}`;
  } else if (spec.max !== undefined && n > spec.max) {
    const floor = spec.minLabel !== undefined ? (spec.floor ?? spec.minLabel) : spec.min;
    message =
      floor !== undefined && spec.minExclusive !== true
        ? `expected ${kind} from ${floor} to ${spec.maxLabel ?? spec.max}, got ${show(value)}`
        : `expected ${kind} ${hi}, got ${show(value)}`;
  }
  if (message !== undefined) {
    issues.push({ path, message });
    return NaN;
  }
  return n === 0 ? 0 : n; // -0 becomes 0: it prints as 0 and divides like 0 everywhere after
}
