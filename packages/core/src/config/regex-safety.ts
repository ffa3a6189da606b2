/**
 * Refuses route regexes that can backtrack catastrophically (ReDoS), at config time.
 *
 * A header regex runs on every request against a value the caller controls, so one pattern such
 * as `(a+)+$` lets a long header stall the event loop for minutes. Three checks, over the AST of
 * `@eslint-community/regexpp` (ESLint's own parser, exact for JS syntax) with the character-set
 * analysis of `regexp-ast-analysis`:
 *
 * 1. nested quantifier: a repeated group holding an unbounded repetition that can consume the
 *    group's first character (`(a+)+`, `([a-z]+)*`, `(.*a){20}`), the classic exponential shape
 *    that `safe-regex` looks for, minus its false alarms where the repetitions cannot meet
 *    (`^v\d+(\.\d+)*$`, `(-[A-Z]{2})?`);
 * 2. overlapping alternatives inside a repetition (`(a|a)*`, `(a|ab)+`), which star-height
 *    checkers such as `safe-regex2` miss;
 * 3. `scslre` (the analysis behind eslint-plugin-regexp's `no-super-linear-backtracking`), which
 *    finds polynomial backtracking between adjacent repetitions (`.*.*=`, `\s*#?\s*$`) and the
 *    self-trading cases the first check does not see;
 * 4. bounded repetitions, which the others ignore: those that can hand characters to what follows
 *    them multiply the ways to split an input (`a?a?…a?aa…a` is 2^n), capped at 10 000.
 *
 * The checks err on the side of refusing: a refused pattern can always be rewritten (the message
 * says how), while an accepted bad one is an outage. Patterns are also capped in length, which
 * bounds the cost of the analysis itself.
 */
import { createRequire } from 'node:module';
import type { AST, RegExpParser } from '@eslint-community/regexpp';
import type { ReadonlyFlags } from 'regexp-ast-analysis';

/**
 * The analysis libraries, loaded on the first regex to check: they cost tens of ms to load,
 * which a mesh without regex routes should not pay at import. All three are CommonJS, so a
 * synchronous `require` works from this ES module on every supported Node.
 */
interface Libs {
  regexpp: typeof import('@eslint-community/regexpp');
  analysis: typeof import('regexp-ast-analysis');
  scslre: typeof import('scslre');
}
let libs: Libs | undefined;

function load(): Libs {
  if (libs === undefined) {
    const require = createRequire(import.meta.url);
    libs = {
      regexpp: require('@eslint-community/regexpp') as Libs['regexpp'],
      analysis: require('regexp-ast-analysis') as Libs['analysis'],
      scslre: require('scslre') as Libs['scslre'],
    };
  }
  return libs;
}

/** Longest route regex accepted, in UTF-16 code units. */
export const MAX_REGEX_LENGTH = 1024;

let parser: RegExpParser | undefined;

/**
 * Verdicts of recent patterns: configs repeat the same regex across services and every update
 * re-validates them all. Bounded (cleared when full), since patterns come from outside.
 */
const verdicts = new Map<string, string | null>();
const MAX_VERDICTS = 1_000;

/**
 * Why `pattern` (already known to compile with `new RegExp(pattern)`) can backtrack
 * catastrophically, as `(reason); what to do`, or undefined when it is safe.
 */
export function regexRisk(pattern: string): string | undefined {
  let verdict = verdicts.get(pattern);
  if (verdict === undefined) {
    if (verdicts.size >= MAX_VERDICTS) verdicts.clear();
    verdict = analyseRisk(pattern) ?? null;
    verdicts.set(pattern, verdict);
  }
  return verdict ?? undefined;
}

function analyseRisk(pattern: string): string | undefined {
  try {
    return analyse(pattern);
  } catch {
    // The analysis libraries failed on a pattern V8 accepts: refuse rather than run it unchecked.
    return '(it could not be analysed for backtracking); rewrite it with simpler syntax';
  }
}

function analyse(pattern: string): string | undefined {
  const { regexpp, scslre } = load();
  parser ??= new regexpp.RegExpParser({ strict: false });
  const parsed: { pattern: AST.Pattern; flags: AST.Flags } = {
    pattern: parser.parsePattern(pattern, 0, pattern.length, { unicode: false }),
    flags: parser.parseFlags(''),
  };
  const flags: ReadonlyFlags = parsed.flags;
  let risk: string | undefined;
  regexpp.visitRegExpAST(parsed.pattern, {
    onQuantifierEnter(q) {
      if (risk === undefined && q.max > 1) risk = nestedQuantifier(q, flags);
    },
    onGroupEnter(g) {
      if (risk === undefined) risk = overlappingAlternatives(g, flags);
    },
    onCapturingGroupEnter(g) {
      if (risk === undefined) risk = overlappingAlternatives(g, flags);
    },
  });
  if (risk !== undefined) return risk;
  risk = boundedSplits(parsed.pattern, flags);
  if (risk !== undefined) return risk;

  // Move reports (an unanchored pattern retried at every position) are linear per position; skip them.
  const report = scslre.analyse(parsed, { maxReports: 1, reportTypes: { Move: false } }).reports[0];
  if (report === undefined) return undefined;
  const how = report.exponential ? 'exponential' : 'polynomial';
  if (report.type === 'Self') {
    return `(nested quantifier: "${report.quant.raw}" inside "${report.parentQuant.raw}", ${how} backtracking); rewrite it without nested repetition`;
  }
  if (report.type === 'Trade') {
    return (
      `(the repetitions "${report.startQuant.raw}" and "${report.endQuant.raw}" can match the same characters, ${how} backtracking); ` +
      'make them match different characters or merge them into one'
    );
  }
  return undefined;
}

/** Rule 1: `q` repeats an element that holds an unbounded repetition able to eat the element's first character. */
function nestedQuantifier(q: AST.Quantifier, flags: ReadonlyFlags): string | undefined {
  const { regexpp, analysis } = load();
  let first: ReturnType<Libs['analysis']['getFirstConsumedChar']> | undefined;
  let found: string | undefined;
  regexpp.visitRegExpAST(q.element, {
    onQuantifierEnter(inner) {
      if (found !== undefined || inner.max <= 1) return;
      if (q.max !== Infinity && inner.max !== Infinity) return; // both bounded: a small fixed product
      first ??= analysis.getFirstConsumedChar(q.element, 'ltr', flags);
      const chars = analysis.getConsumedChars(inner.element, flags).chars;
      if (first.empty || !chars.isDisjointWith(first.char)) found = inner.raw;
    },
  });
  if (found === undefined) return undefined;
  return `(nested quantifier: "${found}" inside "${q.raw}"); rewrite it without nested repetition`;
}

/** Rule 2: a group inside a repetition whose alternatives can start with the same character (or match nothing). */
function overlappingAlternatives(g: AST.Group | AST.CapturingGroup, flags: ReadonlyFlags): string | undefined {
  if (g.alternatives.length < 2 || !insideRepetition(g)) return undefined;
  const { analysis } = load();
  let seen: ReturnType<Libs['analysis']['getFirstConsumedChar']>['char'] | undefined;
  for (const alt of g.alternatives) {
    const first = analysis.getFirstConsumedChar(alt, 'ltr', flags);
    if (first.empty || (seen !== undefined && !seen.isDisjointWith(first.char))) {
      return (
        `(alternatives of "${g.raw}" can match the same characters inside a repetition); ` +
        'make each alternative start with a different character, or move the common part out of the group'
      );
    }
    seen = seen === undefined ? first.char : seen.union(first.char);
  }
  return undefined;
}

/** Most ways the bounded repetitions of one pattern may split an input between them (rule 4). */
const MAX_SPLITS = 10_000;

/**
 * Rule 4: bounded repetitions that can give characters to what follows them (`.{0,1000}.{0,1000}x`,
 * `a?a?…a?aa…a`, `(a{1,100}){1,100}`). Each such repetition multiplies the ways a failing match
 * is retried by its range (compounded by the repetitions around it); the other checks and scslre
 * only look at unbounded repetition.
 */
function boundedSplits(pattern: AST.Pattern, flags: ReadonlyFlags): string | undefined {
  const { regexpp, analysis } = load();
  let splits = 1;
  let culprit: AST.Quantifier | undefined;
  regexpp.visitRegExpAST(pattern, {
    onQuantifierEnter(q) {
      if (culprit !== undefined || q.max === q.min || q.max === Infinity) return;
      const after = analysis.getFirstCharAfter(q, 'ltr', flags);
      if (analysis.getConsumedChars(q.element, flags).chars.isDisjointWith(after.char)) return;
      let factor = q.max - q.min + 1;
      // A choice inside a repeated group is made again on every repetition.
      for (let n = q.parent as AST.Node | null; n !== null; n = n.parent) {
        if (n.type === 'Quantifier' && n.max > 1) factor **= n.max;
      }
      splits *= factor;
      if (splits > MAX_SPLITS) culprit = q;
    },
  });
  if (culprit === undefined) return undefined;
  return (
    `(bounded repetitions such as "${culprit.raw}" can give the same characters to what follows them, ` +
    `more than ${MAX_SPLITS} ways to split one input); bound them tighter, or end each at a character the rest cannot match`
  );
}

function insideRepetition(node: AST.Node): boolean {
  for (let n: AST.Node | null = node.parent; n !== null; n = n.parent) {
    if (n.type === 'Quantifier' && n.max > 1) return true;
  }
  return false;
}
