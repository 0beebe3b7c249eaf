/** How a built-in reads its fields: parsed with its schema (protocol/builtin-fields.ts), each problem named. */
import type { z } from 'zod';

const parsed = new WeakMap<z.ZodType, WeakMap<object, unknown>>();

/**
 * The fields, parsed, or an Error naming every bad field (`fields.url: ...`). A worker passes the
 * same fields object to every call, so each is parsed once.
 */
export function readFields<S extends z.ZodType>(schema: S, fields: Record<string, unknown> | undefined | null, where: string): z.output<S> {
  const input = fields ?? {};
  let seen = parsed.get(schema);
  if (!seen) parsed.set(schema, (seen = new WeakMap()));
  if (seen.has(input)) return seen.get(input) as z.output<S>;
  const result = schema.safeParse(input);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const path = ['fields', ...issue.path.map(String)].join('.');
      return issue.code === 'unrecognized_keys'
        ? `${path}: unknown field ${issue.keys.map((k) => `"${k}"`).join(', ')}`
        : `${path}: ${issue.message}`;
    });
    throw new Error(`${where}: ${problems.join('; ')}`);
  }
  seen.set(input, result.data);
  return result.data;
}
