/**
 * Regular expressions a tenant wrote, run by RE2 (re2js, pure JavaScript): matching takes time
 * linear in the input, whatever the pattern, so `^(a+)+$` cannot hold a process. Patterns are
 * JavaScript syntax, translated to RE2's; what RE2 cannot run (backreferences, lookarounds) is
 * refused with an error naming the pattern, never handed to the backtracking engine.
 */
import { RE2JS, RE2JSSyntaxException } from 're2js';

/** An escape with an odd number of backslashes before `k<`: a named backreference, which RE2's translation would silently turn into the letter k. */
const NAMED_BACKREFERENCE = /(?:^|[^\\])(?:\\\\)*\\k</;

/** The pattern (JavaScript syntax and flags: `i`, `m`, `s`; `g`, `u`, `y` change nothing here) compiled by RE2, or an Error saying why it cannot be. */
export function compileLinear(source: string, flags = ''): RE2JS {
  const refuse = (why: string) =>
    new Error(`pattern ${JSON.stringify(source)} cannot be run in linear time: ${why} (backreferences and lookarounds are not supported)`);
  if (NAMED_BACKREFERENCE.test(source)) throw refuse('it has a named backreference (\\k<...>)');
  let options = 0;
  if (flags.includes('i')) options |= RE2JS.CASE_INSENSITIVE;
  if (flags.includes('m')) options |= RE2JS.MULTILINE;
  if (flags.includes('s')) options |= RE2JS.DOTALL;
  try {
    return RE2JS.compile(RE2JS.translateRegExp(source), options);
  } catch (error) {
    if (error instanceof RE2JSSyntaxException) throw refuse(error.input ? `${error.error}: ${error.input}` : error.error);
    throw refuse((error as Error).message);
  }
}

/** ajv's `code.regExp`: every `pattern`, `patternProperties` and `propertyNames` pattern of a schema compiles through RE2. */
export const linearRegExpEngine = Object.assign(
  (source: string, flags: string) => {
    const re2 = compileLinear(source, flags);
    // ajv keeps one compiled pattern per toString(), so it must differ per pattern and flags.
    return { test: (text: string) => re2.test(text), toString: () => `/${source}/${flags}` };
  },
  { code: 'linearRegExpEngine' },
);

/**
 * JSONata's `RegexEngine`: it is constructed with each regex literal of an expression (a RegExp
 * with flags `i`, `m` and always `g`), then `exec` is called with `lastIndex` set where the search
 * starts; a match is an array (the match, then its groups) with `index`, and `lastIndex` moves to
 * its end, as a global RegExp's does.
 */
export class LinearRegExp {
  lastIndex = 0;
  private readonly re2: RE2JS;

  constructor(regex: RegExp) {
    this.re2 = compileLinear(regex.source, regex.flags);
  }

  exec(input: string): RegExpExecArray | null {
    const matcher = this.re2.matcher(input);
    if (this.lastIndex > input.length || !matcher.find(this.lastIndex)) {
      this.lastIndex = 0;
      return null;
    }
    const groups = Array.from({ length: matcher.groupCount() + 1 }, (_, group) => matcher.group(group) ?? undefined);
    this.lastIndex = matcher.end();
    return Object.assign(groups, { index: matcher.start(), input }) as RegExpExecArray;
  }
}
