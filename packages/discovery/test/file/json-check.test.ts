/**
 * checkJson, the recogniser that gives JSON syntax errors a position: it must accept exactly
 * what JSON.parse accepts (apart from the duplicate keys and nesting it refuses on purpose), so
 * it is checked against JSON.parse on generated valid, mutated and random texts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { checkJson } from '../../src/file/json-check.js';

const DEEP = 1_000_000;

function parses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** checkJson's verdict agrees with JSON.parse, up to the first duplicate key it refuses on purpose. */
function agrees(text: string): void {
  const problem = checkJson(text, DEEP);
  if (problem === undefined) {
    assert.ok(parses(text), `checkJson accepted what JSON.parse refuses: ${JSON.stringify(text)}`);
  } else if (problem.message.startsWith('duplicate key')) {
    // Refused on purpose, wherever JSON.parse would have stopped later (or kept the last value).
    assert.match(text.slice(problem.offset), /^"/);
  } else {
    assert.ok(!parses(text), `checkJson refused valid JSON (${problem.message}): ${JSON.stringify(text)}`);
    assert.ok(problem.offset >= 0 && problem.offset <= text.length);
  }
}

describe('checkJson', () => {
  it('accepts every JSON text JSON.stringify produces, in any spacing', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.constantFrom(undefined, 2, '\t'), (value, space) => {
        const text = JSON.stringify(value, null, space);
        const problem = checkJson(text, DEEP);
        assert.equal(problem, undefined, `${problem?.message}: ${text}`);
      }),
      { numRuns: 500 },
    );
  });

  it('agrees with JSON.parse on mutated and random texts', () => {
    const mutated = fc
      .tuple(
        fc.json(),
        fc.nat(),
        fc.constantFrom('', ',', ']', '}', '"', ':', '\\', '0', '-', '.', 'e', '\n', 'x', '\u0001'),
      )
      .map(([text, at, insert]) => {
        const i = text.length === 0 ? 0 : at % text.length;
        return insert === '' ? text.slice(0, i) + text.slice(i + 1) : text.slice(0, i) + insert + text.slice(i);
      });
    fc.assert(fc.property(mutated, agrees), { numRuns: 3000 });
    fc.assert(fc.property(fc.string({ unit: fc.constantFrom(...'{}[]",:0123456789.-+eEtrufalsn \\u\n') }), agrees), {
      numRuns: 3000,
    });
  });

  it('names the offset and the problem', () => {
    assert.deepEqual(checkJson('{"a": 1,}', DEEP), {
      offset: 8,
      message: `unexpected '}' after ',' (JSON allows no trailing comma)`,
    });
    assert.deepEqual(checkJson('{"a": 1 "b": 2}', DEEP), {
      offset: 8,
      message: `expected ',' or '}' after a property value, got '"'`,
    });
    assert.deepEqual(checkJson('[1, 2', DEEP), { offset: 5, message: 'unexpected end of file (1 unclosed bracket)' });
    assert.deepEqual(checkJson('{"a": "x\ny"}', DEEP), {
      offset: 8,
      message: 'unescaped control character in a string (write it as \\n)',
    });
    assert.deepEqual(checkJson('{"a": 01}', DEEP)?.offset, 6);
    assert.deepEqual(checkJson('{} {}', DEEP), {
      offset: 3,
      message: `unexpected '{' after the end of the JSON value`,
    });
    assert.deepEqual(checkJson('', DEEP), { offset: 0, message: 'unexpected end of file' });
    assert.deepEqual(checkJson('{"a": {"b": 1, "a": 2}, "a": 3}', DEEP), {
      offset: 24,
      message: 'duplicate key "a" in the same object',
    });
    assert.equal(checkJson('[[[]]]', 3), undefined);
    assert.deepEqual(checkJson('[[[[]]]]', 3), { offset: 3, message: 'nesting deeper than 3 levels' });
  });
});
