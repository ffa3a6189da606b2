/**
 * A strict JSON recogniser run before `JSON.parse`. It exists for what `JSON.parse` does not
 * give: the position of a syntax error (Node 20's messages carry none), an error on duplicate
 * keys (`JSON.parse` silently keeps the last one, hiding a service defined twice) and a bound
 * on nesting. Iterative, so hostile nesting cannot overflow the stack; linear in the text.
 */

/** Where the text stops being acceptable JSON, and why. */
export interface JsonProblem {
  /** Offset (UTF-16 code units) into the text. */
  offset: number;
  message: string;
}

const enum Mode {
  /** A value must come next (start of text, after `:` or after `,` in an array). */
  Value,
  /** Just after `[`: a value or `]`. */
  ValueOrClose,
  /** Just after `{`: a key or `}`. */
  KeyOrClose,
  /** After `,` in an object: a key. */
  Key,
  /** After a key: `:`. */
  Colon,
  /** After a complete value: `,`, the container's closing bracket, or the end of the text. */
  After,
}

interface Frame {
  /** Keys seen so far, for objects; `undefined` for arrays. */
  keys: Set<string> | undefined;
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

/** Returns the first problem in `text`, or `undefined` when it is one valid JSON value within `maxDepth`. */
export function checkJson(text: string, maxDepth: number): JsonProblem | undefined {
  const n = text.length;
  const stack: Frame[] = [];
  let mode = Mode.Value;
  let i = 0;
  for (;;) {
    i = skipWhitespace(text, i);
    if (mode === Mode.After && stack.length === 0) {
      return i < n ? { offset: i, message: `unexpected ${show(text, i)} after the end of the JSON value` } : undefined;
    }
    if (i >= n) {
      const open = stack.length;
      return {
        offset: n,
        message: `unexpected end of file${open > 0 ? ` (${open} unclosed bracket${open > 1 ? 's' : ''})` : ''}`,
      };
    }
    const c = text.charCodeAt(i);
    switch (mode) {
      case Mode.Value:
      case Mode.ValueOrClose: {
        if (c === 0x5d /* ] */) {
          if (mode === Mode.ValueOrClose) {
            stack.pop();
            i++;
            mode = Mode.After;
            continue;
          }
          if (stack.length > 0 && stack[stack.length - 1]!.keys === undefined) {
            return { offset: i, message: `unexpected ']' after ',' (JSON allows no trailing comma)` };
          }
        }
        if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
          if (stack.length >= maxDepth) return { offset: i, message: `nesting deeper than ${maxDepth} levels` };
          stack.push({ keys: c === 0x7b ? new Set() : undefined });
          i++;
          mode = c === 0x7b ? Mode.KeyOrClose : Mode.ValueOrClose;
          continue;
        }
        const end = scanScalar(text, i);
        if (typeof end !== 'number') return end;
        i = end;
        mode = Mode.After;
        continue;
      }
      case Mode.KeyOrClose:
      case Mode.Key: {
        if (c === 0x7d /* } */) {
          if (mode === Mode.KeyOrClose) {
            stack.pop();
            i++;
            mode = Mode.After;
            continue;
          }
          return { offset: i, message: `unexpected '}' after ',' (JSON allows no trailing comma)` };
        }
        if (c !== 0x22 /* " */) {
          return { offset: i, message: `expected a double-quoted property name, got ${show(text, i)}` };
        }
        const end = scanString(text, i);
        if (typeof end !== 'number') return end;
        const key = JSON.parse(text.slice(i, end)) as string;
        const keys = stack[stack.length - 1]!.keys!;
        if (keys.has(key)) return { offset: i, message: `duplicate key ${JSON.stringify(key)} in the same object` };
        keys.add(key);
        i = end;
        mode = Mode.Colon;
        continue;
      }
      case Mode.Colon:
        if (c !== 0x3a /* : */)
          return { offset: i, message: `expected ':' after the property name, got ${show(text, i)}` };
        i++;
        mode = Mode.Value;
        continue;
      case Mode.After: {
        const top = stack[stack.length - 1]!;
        const isObject = top.keys !== undefined;
        if (c === 0x2c /* , */) {
          i++;
          mode = isObject ? Mode.Key : Mode.Value;
          continue;
        }
        if (c === (isObject ? 0x7d : 0x5d)) {
          stack.pop();
          i++;
          continue;
        }
        return {
          offset: i,
          message: `expected ',' or '${isObject ? '}' : ']'}' after a ${isObject ? 'property value' : 'list item'}, got ${show(text, i)}`,
        };
      }
    }
  }
}

/** Scans a string, number or literal at `i`; returns the offset after it, or the problem. */
function scanScalar(text: string, i: number): number | JsonProblem {
  const c = text.charCodeAt(i);
  if (c === 0x22) return scanString(text, i);
  if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
    NUMBER.lastIndex = i;
    if (!NUMBER.test(text)) return { offset: i, message: `invalid number` };
    const end = NUMBER.lastIndex;
    const next = text.charCodeAt(end);
    if ((next >= 0x30 && next <= 0x39) || next === 0x2e || next === 0x65 || next === 0x45) {
      return {
        offset: i,
        message: `invalid number (JSON allows no leading zeros, and needs digits around '.' and after 'e')`,
      };
    }
    return end;
  }
  for (const literal of ['true', 'false', 'null']) {
    if (text.startsWith(literal, i)) return i + literal.length;
  }
  return { offset: i, message: `unexpected ${show(text, i)}, expected a value` };
}

/** Scans a double-quoted string starting at `i`; returns the offset after its closing quote, or the problem. */
function scanString(text: string, i: number): number | JsonProblem {
  const n = text.length;
  let j = i + 1;
  while (j < n) {
    const c = text.charCodeAt(j);
    if (c === 0x22) return j + 1;
    if (c === 0x5c /* \ */) {
      const e = text.charCodeAt(j + 1);
      if (e === 0x75 /* u */) {
        if (!/^[0-9a-fA-F]{4}$/.test(text.slice(j + 2, j + 6))) {
          return { offset: j, message: `invalid \\u escape (expected 4 hex digits)` };
        }
        j += 6;
        continue;
      }
      // " \ / b f n r t
      if (
        e === 0x22 ||
        e === 0x5c ||
        e === 0x2f ||
        e === 0x62 ||
        e === 0x66 ||
        e === 0x6e ||
        e === 0x72 ||
        e === 0x74
      ) {
        j += 2;
        continue;
      }
      return { offset: j, message: `invalid escape ${show(text, j + 1, '\\')} in a string` };
    }
    if (c < 0x20) {
      return { offset: j, message: `unescaped control character in a string (write it as ${controlEscape(c)})` };
    }
    j++;
  }
  return { offset: i, message: `unterminated string` };
}

function skipWhitespace(text: string, i: number): number {
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    i++;
  }
  return i;
}

function controlEscape(c: number): string {
  if (c === 0x0a) return '\\n';
  if (c === 0x09) return '\\t';
  if (c === 0x0d) return '\\r';
  return `\\u${c.toString(16).padStart(4, '0')}`;
}

function show(text: string, i: number, prefix = ''): string {
  const cp = text.codePointAt(i);
  if (cp === undefined) return 'end of file';
  const ch = String.fromCodePoint(cp);
  return cp < 0x20 || cp === 0x7f ? `character U+${cp.toString(16).padStart(4, '0')}` : `'${prefix}${ch}'`;
}

/**
 * Offset of the value at `segments` (object keys and array indexes) in `text`, which must be
 * JSON `checkJson` accepted: the offset of the key for an object member, of the item for an
 * array item; `undefined` when the path is not in the text. One forward pass: values off the
 * path are skipped, not parsed.
 */
export function locateJsonPath(text: string, segments: ReadonlyArray<string | number>): number | undefined {
  let i = skipWhitespace(text, 0);
  let at: number | undefined;
  for (const segment of segments) {
    const open = text.charCodeAt(i);
    if (typeof segment === 'string' && open === 0x7b) {
      i = skipWhitespace(text, i + 1);
      let found = false;
      while (text.charCodeAt(i) === 0x22) {
        const keyStart = i;
        const keyEnd = scanString(text, i) as number;
        i = skipWhitespace(text, skipWhitespace(text, keyEnd) + 1); // past ':'
        if ((JSON.parse(text.slice(keyStart, keyEnd)) as string) === segment) {
          at = keyStart;
          found = true;
          break;
        }
        i = skipWhitespace(text, skipValue(text, i));
        if (text.charCodeAt(i) === 0x2c) i = skipWhitespace(text, i + 1);
      }
      if (!found) return undefined;
    } else if (typeof segment === 'number' && open === 0x5b) {
      i = skipWhitespace(text, i + 1);
      for (let k = 0; k < segment; k++) {
        if (text.charCodeAt(i) === 0x5d) return undefined;
        i = skipWhitespace(text, skipValue(text, i));
        if (text.charCodeAt(i) !== 0x2c) return undefined;
        i = skipWhitespace(text, i + 1);
      }
      if (text.charCodeAt(i) === 0x5d) return undefined;
      at = i;
    } else {
      return undefined;
    }
  }
  return at;
}

/** Offset just after the (valid) JSON value starting at `i`, without recursion. */
function skipValue(text: string, i: number): number {
  let depth = 0;
  do {
    i = skipWhitespace(text, i);
    const c = text.charCodeAt(i);
    if (c === 0x22) i = scanString(text, i) as number;
    else if (c === 0x7b || c === 0x5b) {
      depth++;
      i++;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
      i++;
    } else if (c === 0x2c || c === 0x3a) i++;
    else i = scanScalar(text, i) as number;
  } while (depth > 0 && i < text.length);
  return i;
}
