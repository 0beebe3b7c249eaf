import type { ZxcvbnFactory } from '@zxcvbn-ts/core';

/** zxcvbn's score 3 ("safely unguessable"): at least 10^8 guesses, even for an attacker who knows the account. */
const MIN_SCORE = 3;

/** Loaded on first use: the dictionaries take a fraction of a second to import and build, which no start should wait for. */
let estimator: Promise<ZxcvbnFactory> | undefined;
async function build(): Promise<ZxcvbnFactory> {
  const [{ ZxcvbnFactory }, common, en] = await Promise.all([
    import('@zxcvbn-ts/core'),
    import('@zxcvbn-ts/language-common'),
    import('@zxcvbn-ts/language-en'),
  ]);
  return new ZxcvbnFactory({
    dictionary: { ...common.dictionary, ...en.dictionary },
    graphs: common.adjacencyGraphs,
    translations: en.translations,
    // The estimate is synchronous: judging the first 64 characters, with few l33t variants, keeps
    // the worst case near 0.1 s instead of seconds (a longer password is judged on its start).
    maxLength: 64,
    l33tMaxSubstitutions: 8,
  });
}

/**
 * Why `password` is too weak for an account, or null when it is strong enough. `personal` is what
 * an attacker knows of the account (its username, names): the password may not be built from it.
 */
export async function passwordWeakness(password: string, personal: (string | null | undefined)[]): Promise<string | null> {
  const known = personal.flatMap((value) => (value ? [value, ...value.split(/[^\p{L}\p{N}]+/u).filter((part) => part.length >= 3)] : []));
  const result = (await (estimator ??= build())).check(password, [...known, 'hookline']);
  if (result.score >= MIN_SCORE) return null;
  const advice = [result.feedback.warning, ...result.feedback.suggestions].filter(Boolean).join(' ');
  return `too easy to guess. ${advice || 'Add more words or characters that are less common.'}`;
}
