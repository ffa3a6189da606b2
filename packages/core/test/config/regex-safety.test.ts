/**
 * Route header regexes run on every request against caller-controlled values, so patterns that
 * can backtrack catastrophically are refused at config time, with the path and the reason.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_REGEX_LENGTH, regexRisk } from '../../src/config/regex-safety.js';
import { validateMeshConfig } from '../../src/config/validate.js';
import { assertIssue, configError } from './config-error.js';

const EVIL = [
  '(a+)+',
  '(a+)+$',
  '(a|a)*',
  '(a|a)*$',
  '(.*a){20}',
  '([a-z]+)*$',
  '(a|aa)+$',
  '^(\\w+\\s?)*$',
  '(x+x+)+y',
  '(\\d+|\\d+\\.\\d+)*$',
  '^(([a-z])+.)+[A-Z]([a-z])+$',
  '(a*)*b',
  '((a|a)x)*$',
  '.*.*=.*',
  '\\s*#?\\s*$',
  '^([a-zA-Z0-9])(([\\-.]|[_]+)?([a-zA-Z0-9]+))*(@){1}[a-z0-9]+$',
  // bounded repetitions that hand characters to what follows them
  '.{0,1000}.{0,1000}.{0,1000}$',
  '(?:a{1,100}){1,100}$',
  `${'a?'.repeat(30)}${'a'.repeat(30)}$`,
  '[^a]{1,65535}b',
];

const ORDINARY = [
  '^v[0-9]+$',
  '^(beta|canary)$',
  '^[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}$',
  'mobile',
  '^Mozilla/5\\.0',
  '^(?:en|fr|de)(-[A-Z]{2})?$',
  '^[a-z]+-[0-9]+$',
  '^(a|b)*$',
  '\\bfoo\\b',
  '^bearer .+$',
  '^v\\d+(\\.\\d+)*$',
  '^[a-z]+(-[a-z]+)*$',
  '^(\\d{1,3}\\.){3}\\d{1,3}$',
  '.*-canary$',
  '^[a-z0-9-]{1,63}(\\.[a-z0-9-]{1,63}){0,4}$',
  '^\\d{3}-\\d{3}-\\d{4}$',
  '^[A-Za-z0-9+/]{0,100}={0,2}$',
  '^Bearer [A-Za-z0-9._~+/-]+=*$',
  '^v\\d{1,2}(\\.\\d{1,3}){0,2}$',
  '^[\\w.-]{1,64}@[\\w.-]{1,255}$',
  '^.{1,64}$',
];

/** A web service routing on header x-id with `regex`. */
function route(regex: string): unknown {
  return {
    services: {
      users: { endpoints: ['10.0.0.1:80'] },
      api: { routes: [{ match: { headers: { 'x-id': { regex } } }, backends: [{ service: 'users' }] }] },
    },
  };
}

const PATH = 'services.api.routes[0].match.headers.x-id.regex';

describe('route regex safety', () => {
  for (const pattern of EVIL) {
    it(`refuses ${pattern}`, () => {
      const err = configError(() => validateMeshConfig(route(pattern)));
      assert.equal(err.path, PATH);
      assert.ok(
        // Patterns over 80 characters are shown shortened.
        err.message.startsWith(
          `${PATH}: ${JSON.stringify(pattern.length > 80 ? `${pattern.slice(0, 77)}...` : pattern)} can backtrack catastrophically (`,
        ),
        err.message,
      );
      assert.equal(err.issues.length, 1);
    });
  }

  for (const pattern of ORDINARY) {
    it(`accepts ${pattern}`, () => {
      assert.equal(regexRisk(pattern), undefined);
      const s = validateMeshConfig(route(pattern)).services.get('api')!;
      assert.deepEqual(s.routes[0]!.headers[0]!.regex, new RegExp(pattern));
    });
  }

  it('says why and what to do', () => {
    assertIssue(
      () => validateMeshConfig(route('(a+)+$')),
      PATH,
      '"(a+)+$" can backtrack catastrophically (nested quantifier: "a+" inside "(a+)+"); rewrite it without nested repetition',
    );
    assertIssue(
      () => validateMeshConfig(route('(a|a)*')),
      PATH,
      '"(a|a)*" can backtrack catastrophically (alternatives of "(a|a)" can match the same characters inside a repetition); ' +
        'make each alternative start with a different character, or move the common part out of the group',
    );
    assertIssue(
      () => validateMeshConfig(route('\\s*#?\\s*$')),
      PATH,
      '"\\\\s*#?\\\\s*$" can backtrack catastrophically (the repetitions "\\s*" and "\\s*" can match the same characters, ' +
        'polynomial backtracking); make them match different characters or merge them into one',
    );
  });

  it('caps the pattern length', () => {
    assertIssue(
      () => validateMeshConfig(route('a'.repeat(MAX_REGEX_LENGTH + 1))),
      PATH,
      `expected a regular expression of at most ${MAX_REGEX_LENGTH} characters, got ${MAX_REGEX_LENGTH + 1} characters`,
    );
    assert.ok(validateMeshConfig(route('a'.repeat(MAX_REGEX_LENGTH))));
  });

  it('still reports a pattern that does not compile as invalid, not as unsafe', () => {
    const err = configError(() => validateMeshConfig(route('(')));
    assert.match(err.message, /expected a valid regular expression, got "\("/);
  });
});
