/**
 * Finds where a config path (`services.users.endpoints[0].address`, as core's validator names
 * it) is written in a config file, so a schema error can say `mesh.yaml:12:9:` and an editor can
 * jump there. Runs only when there is an error to report, on what parsing already produced (the
 * YAML document) or in one forward pass over JSON text; anything it cannot place gets no position.
 */
import { isAlias, isMap, isScalar, isSeq, type Document, type Node as YamlNode } from 'yaml';
import { locateJsonPath } from './json-check.js';
import { lineColumn } from './line-column.js';

/** A path segment: a map key or a list index. */
type Segment = string | number;

/** Line and column of a config path in a parsed file, or `undefined` when it is not written there. */
export type Locator = (path: string) => { line: number; column: number } | undefined;

const IDENTIFIER = /[A-Za-z0-9_$-]+/y;

/**
 * Splits a validator path into segments: `a.b`, `a[0]`, `a["x.y"]`; `(root)` is the empty path.
 * `undefined` for anything else (such as a key the validator shortened).
 */
export function parsePath(path: string): Segment[] | undefined {
  if (path === '(root)') return [];
  const segments: Segment[] = [];
  let i = 0;
  while (i < path.length) {
    const c = path[i];
    if (c === '[') {
      if (path[i + 1] === '"') {
        const end = endOfJsonString(path, i + 1);
        if (end === undefined || path[end] !== ']') return undefined;
        segments.push(JSON.parse(path.slice(i + 1, end)) as string);
        i = end + 1;
      } else {
        const close = path.indexOf(']', i);
        const index = path.slice(i + 1, close);
        if (close === -1 || !/^(0|[1-9][0-9]*)$/.test(index)) return undefined;
        segments.push(Number(index));
        i = close + 1;
      }
      continue;
    }
    if (c === '.') {
      if (segments.length === 0) return undefined;
      i++;
    }
    IDENTIFIER.lastIndex = i;
    const match = IDENTIFIER.exec(path);
    if (match === null) return undefined;
    segments.push(match[0]);
    i = IDENTIFIER.lastIndex;
  }
  return segments;
}

function endOfJsonString(text: string, start: number): number | undefined {
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return i + 1;
  }
  return undefined;
}

/** A locator over JSON text that `checkJson` accepted. */
export function jsonLocator(text: string): Locator {
  return (path) => {
    const segments = parsePath(path);
    if (segments === undefined || segments.length === 0) return undefined;
    const offset = locateJsonPath(text, segments);
    return offset === undefined ? undefined : lineColumn(text, offset);
  };
}

/**
 * A locator over a parsed YAML document: the key of a map entry, the item of a list, following
 * aliases to their anchors.
 */
export function yamlLocator(doc: Document.Parsed, text: string): Locator {
  return (path) => {
    const segments = parsePath(path);
    if (segments === undefined || segments.length === 0) return undefined;
    let node: unknown = doc.contents;
    let at: number | undefined;
    for (const segment of segments) {
      if (isAlias(node)) node = node.resolve(doc);
      if (typeof segment === 'string' && isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === segment);
        if (pair === undefined) return undefined;
        at = (pair.key as YamlNode).range?.[0];
        node = pair.value;
      } else if (typeof segment === 'number' && isSeq(node) && segment < node.items.length) {
        node = node.items[segment];
        at = (node as YamlNode | null)?.range?.[0];
      } else {
        return undefined;
      }
    }
    return at === undefined ? undefined : lineColumn(text, at);
  };
}
