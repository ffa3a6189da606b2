/**
 * Turns a parsed YAML document into JSON values, within bounds: nesting depth, the number of
 * anchors and aliases, and how much the aliases expand. It replaces the `yaml` package's
 * `toJS()`, whose bounds fall short for untrusted files: its `maxAliasCount` stops the classic
 * "billion laughs" (aliases of aliases) but not one large block aliased many times, and it
 * resolves every alias by scanning the document (a full walk per alias inside an aliased
 * block), so a file of many aliases is quadratic to read. Here one iterative walk in document
 * order (no input can overflow the stack) resolves aliases through a map, measures, and builds.
 *
 * Maps become plain objects (every key a string, as in JSON; a `__proto__` key an own property,
 * never the prototype; a key twice in one map an error), lists arrays, scalars their
 * core-schema values. An alias is the same object as its anchor's value, as with `toJS()`.
 */
import { isAlias, isMap, isScalar, isSeq, type Node as YamlNode, type Pair } from 'yaml';

/** Limits of `yamlToJs`. */
export interface YamlLimits {
  /** Most nested collections (maps and lists). */
  maxDepth: number;
  /** Most anchors (`&name`) in the document. */
  maxAnchors: number;
  /** Most aliases (`*name`) in the document. */
  maxAliases: number;
  /** Most nodes the aliases may add to the document once expanded. */
  maxAliasNodes: number;
}

/** The first limit the document breaks, or a node it cannot turn into JSON: where (an offset in the text) and what. */
export interface YamlProblem {
  offset: number;
  message: string;
}

/** A collection being built. */
interface Frame {
  node: YamlNode;
  /** Map pairs or list items. */
  items: readonly unknown[];
  next: number;
  /** Collection depth of this node (the root collection is 0). */
  depth: number;
  /** Nodes in this subtree, aliases expanded. */
  size: number;
  value: Record<string, unknown> | unknown[];
  /** Key under which the value goes in its parent map (for a map parent). */
  key: string;
}

/** A resolved anchor: the value an alias stands for, and its size; `undefined` size while open. */
interface Anchor {
  value: unknown;
  size: number | undefined;
}

/** Converts `root` (a parsed document's `contents`) to JSON values within `limits`, or returns the first problem. */
export function yamlToJs(root: unknown, limits: YamlLimits): { value: unknown } | { problem: YamlProblem } {
  const anchors = new Map<string, Anchor>();
  let anchorCount = 0;
  let aliasCount = 0;
  let expanded = 0;
  const stack: Frame[] = [];
  let result: unknown = null;

  const addAnchor = (node: YamlNode, anchor: Anchor): YamlProblem | undefined => {
    if (node.anchor === undefined) return undefined;
    if (++anchorCount > limits.maxAnchors) {
      return at(node, `more than ${limits.maxAnchors} anchors (&name); share fewer blocks, or repeat the values`);
    }
    anchors.set(node.anchor, anchor);
    return undefined;
  };

  /**
   * The value of a node: a leaf's at once (`{ value, size }`), or a new frame pushed for a
   * collection (`undefined`: the value arrives when the frame completes).
   */
  const visit = (
    node: unknown,
    depth: number,
    key: string,
  ): { value: unknown; size: number } | YamlProblem | undefined => {
    if (node === null || node === undefined) return { value: null, size: 1 };
    if (isAlias(node)) {
      if (++aliasCount > limits.maxAliases) {
        return at(node, `more than ${limits.maxAliases} aliases (*name); repeat the values instead`);
      }
      const anchor = anchors.get(node.source);
      if (anchor === undefined) return at(node, `alias *${node.source} has no anchor &${node.source} before it`);
      if (anchor.size === undefined) return at(node, `alias *${node.source} is inside its own anchor (a cycle)`);
      expanded += anchor.size - 1;
      if (expanded > limits.maxAliasNodes) {
        return at(
          node,
          `aliases (*name) expand to more than ${limits.maxAliasNodes} nodes, as in a "billion laughs" attack; ` +
            `repeat the values instead of aliasing large or nested blocks`,
        );
      }
      return { value: anchor.value, size: anchor.size };
    }
    if (isScalar(node)) {
      const leaf = { value: node.value, size: 1 };
      return addAnchor(node, leaf) ?? leaf;
    }
    if (isMap(node) || isSeq(node)) {
      if (depth >= limits.maxDepth) return at(node, `nesting deeper than ${limits.maxDepth} levels`);
      const value: Record<string, unknown> | unknown[] = isSeq(node) ? [] : {};
      const problem = addAnchor(node, { value, size: undefined });
      if (problem !== undefined) return problem;
      stack.push({ node, items: node.items, next: 0, depth, size: 1, value, key });
      return undefined;
    }
    return at(node, `unsupported YAML node`);
  };

  const attach = (frame: Frame | undefined, key: string, value: unknown, size: number): void => {
    if (frame === undefined) {
      result = value;
      return;
    }
    frame.size += size;
    if (Array.isArray(frame.value)) frame.value.push(value);
    else if (key === '__proto__') {
      Object.defineProperty(frame.value, key, { value, writable: true, enumerable: true, configurable: true });
    } else frame.value[key] = value;
  };

  const top = visit(root, 0, '');
  if (top !== undefined) {
    if ('offset' in top) return { problem: top };
    return { value: top.value };
  }
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    if (frame.next < frame.items.length) {
      const item = frame.items[frame.next++];
      let child: unknown = item;
      let key = '';
      if (!Array.isArray(frame.value)) {
        const pair = item as Pair;
        if (pair.key !== null && pair.key !== undefined && !isScalar(pair.key)) {
          return { problem: at(pair.key, `a map key must be a string`) };
        }
        key = pair.key === null || pair.key === undefined ? '' : String(pair.key.value);
        // Checked here, not by the parser: the `yaml` package's `uniqueKeys` compares each key
        // with every earlier one (a 40 000-key map took 12 s).
        if (Object.hasOwn(frame.value, key)) {
          return { problem: at(pair.key ?? frame.node, `duplicate key ${JSON.stringify(key)} in the same map`) };
        }
        child = pair.value;
      }
      const leaf = visit(child, frame.depth + 1, key);
      if (leaf === undefined) continue;
      if ('offset' in leaf) return { problem: leaf };
      attach(frame, key, leaf.value, leaf.size);
      continue;
    }
    stack.pop();
    const anchor = frame.node.anchor === undefined ? undefined : anchors.get(frame.node.anchor);
    if (anchor !== undefined && anchor.value === frame.value) anchor.size = frame.size;
    attach(stack[stack.length - 1], frame.key, frame.value, frame.size);
  }
  return { value: result };
}

function at(node: unknown, message: string): YamlProblem {
  return { offset: (node as YamlNode).range?.[0] ?? 0, message };
}
