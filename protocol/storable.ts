/**
 * What every entry (the control plane's API, the edge's webhooks) refuses before anything stores,
 * signs or serializes it: text PostgreSQL cannot hold (a NUL character), text that is not Unicode
 * (a lone surrogate, which `\ud800` in JSON makes) and JSON nested deeper than MAX_JSON_DEPTH
 * (PostgreSQL's jsonb and JSON.stringify both recurse). One check, so both sides agree.
 */
export const MAX_JSON_DEPTH = 64;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why a text cannot be stored as it is, or null. */
export function textProblem(text: string): string | null {
  if (text.includes('\u0000')) return 'contains a NUL character (\\u0000), which cannot be stored';
  if (LONE_SURROGATE.test(text)) return 'contains a lone surrogate (half of a UTF-16 pair), which is not valid Unicode';
  return null;
}

/**
 * A problem in a parsed JSON value (the first one found), naming where it is (`body.graph.nodes.0.name`, as
 * validation messages do), or null. Iterative, so a document nested too deep is refused rather
 * than overflowing the stack.
 */
export function jsonProblem(value: unknown, root: string, maxDepth = MAX_JSON_DEPTH): string | null {
  const pending: { value: unknown; path: string; depth: number }[] = [{ value, path: root, depth: 0 }];
  while (pending.length > 0) {
    const { value, path, depth } = pending.pop()!;
    if (typeof value === 'string') {
      const problem = textProblem(value);
      if (problem) return `${path}: ${problem}`;
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    if (depth >= maxDepth) return `${path}: nested deeper than ${maxDepth} levels`;
    const entries = Array.isArray(value) ? value.map((item, i) => [String(i), item] as const) : Object.entries(value);
    for (const [key, item] of entries) {
      const problem = textProblem(key);
      if (problem) return `${path}: a key ${problem}`;
      pending.push({ value: item, path: `${path}.${key}`, depth: depth + 1 });
    }
  }
  return null;
}
