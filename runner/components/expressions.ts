/**
 * JSONata for the built-ins: each distinct expression compiled once and kept, evaluated against a
 * message's data with the rest of the message bound as variables, errors turned into Errors that
 * name the field and keep JSONata's message, code and position.
 */
import jsonata from 'jsonata';
import { LinearRegExp } from '../../protocol/linear-regex.js';
import type { StepMessage } from '../sdk.js';

/**
 * One evaluation may take this long. JSONata checks it at every step of the evaluation, so an
 * endless loop or recursion fails the input instead of holding the worker (its evaluation never
 * yields to timers, so the step's own timeout could not stop it).
 */
export const EXPRESSION_TIMEOUT_MS = 10_000;
const MAX_CACHED = 1000;

const compiled = new Map<string, jsonata.Expression>();

interface JsonataError {
  code: string;
  message: string;
  position?: number;
  token?: string;
}

const isJsonataError = (error: unknown): error is JsonataError =>
  typeof error === 'object' &&
  error !== null &&
  typeof (error as JsonataError).code === 'string' &&
  typeof (error as JsonataError).message === 'string';

/** `fields.<field>: <JSONata's message> (JSONata <code> at position <n>, near "<token>")`. */
function expressionError(error: unknown, field: string): Error {
  if (!isJsonataError(error))
    return error instanceof Error
      ? new Error(`fields.${field}: ${error.message}`, { cause: error })
      : new Error(`fields.${field}: ${String(error)}`);
  const where = [
    `JSONata ${error.code}`,
    error.position === undefined ? null : `at position ${error.position}`,
    error.token === undefined ? null : `near "${error.token}"`,
  ];
  return new Error(`fields.${field}: ${error.message} (${where.filter(Boolean).join(', ')})`);
}

/** Regex literals run by RE2 (`$match`, `$replace`, `$split`, `$contains`, `~>`), so none can backtrack for ever. */
const options = { timeout: EXPRESSION_TIMEOUT_MS, RegexEngine: LinearRegExp as unknown as RegExpConstructor };

/** JSONata's own `$toMillis`, as its expressions find it. */
const nativeToMillis = (
  (await jsonata('$toMillis').evaluate({})) as {
    implementation: (this: unknown, timestamp?: string, picture?: string) => number | undefined;
  }
).implementation;

/** `new RegExp(source, flags)` as JSONata's date parsing calls it, with RE2 behind it. */
function LinearRegExpConstructor(source: string, flags = ''): LinearRegExp {
  return new LinearRegExp({ source, flags } as RegExp);
}

/**
 * `$toMillis(timestamp, picture)` matches the timestamp with a regex it builds from the picture,
 * with the global RegExp, which RegexEngine does not reach: a picture of many word parts held a
 * worker for seconds on a short input. For that one synchronous call RE2 stands in for RegExp.
 */
function linearToMillis(this: unknown, timestamp?: string, picture?: string): number | undefined {
  if (picture === undefined) return nativeToMillis.call(this, timestamp);
  const native = globalThis.RegExp;
  globalThis.RegExp = LinearRegExpConstructor as unknown as RegExpConstructor;
  try {
    return nativeToMillis.call(this, timestamp, picture);
  } finally {
    globalThis.RegExp = native;
  }
}

/** Compiles every regex literal of the expression (AST nodes of type `regex`) now, so one RE2 cannot run fails the expression whichever branch holds it. */
function checkRegexes(node: unknown, seen = new Set<object>()): void {
  if (!node || typeof node !== 'object' || seen.has(node)) return;
  seen.add(node);
  const { type, value } = node as { type?: unknown; value?: unknown };
  if (type === 'regex' && value instanceof RegExp) new LinearRegExp(value);
  for (const child of Object.values(node)) checkRegexes(child, seen);
}

/** The compiled expression, from the cache when this text was compiled before; a syntax error or a regex RE2 cannot run names the field. */
export function compile(source: string, field: string): jsonata.Expression {
  let expression = compiled.get(source);
  if (expression) return expression;
  try {
    expression = jsonata(source, options);
    checkRegexes(expression.ast());
    expression.registerFunction('toMillis', linearToMillis, '<s-s?:n>');
  } catch (error) {
    throw expressionError(error, field);
  }
  if (compiled.size >= MAX_CACHED) compiled.delete(compiled.keys().next().value!);
  compiled.set(source, expression);
  return expression;
}

/**
 * What an expression sees: the message's data as its input (`$`), and the rest of the message as
 * `$headers`, `$passthrough` (earlier steps' data by step id), `$metadata`, `$attachments` and
 * `$message` (the whole message: `$message.id`, and a webhook's `method`, `query`, `url`, `pathSuffix`).
 */
export async function evaluate(source: string, message: StepMessage, field: string): Promise<unknown> {
  const expression = compile(source, field);
  const bindings = {
    headers: message.headers ?? {},
    passthrough: message.passthrough ?? {},
    metadata: message.metadata ?? {},
    attachments: message.attachments ?? {},
    message,
  };
  try {
    return await expression.evaluate(message.data, bindings);
  } catch (error) {
    throw expressionError(error, field);
  }
}

const isLambda = (value: unknown) =>
  typeof value === 'function' || (typeof value === 'object' && value !== null && '_jsonata_lambda' in value);

/**
 * A JSONata result as plain JSON: its sequences become arrays, functions inside it are left out.
 * A result that is itself a function is an error (it is not data).
 */
export function toJson(value: unknown, field: string): unknown {
  if (value === undefined) return undefined;
  if (isLambda(value)) throw new Error(`fields.${field}: the expression gives a function, not data`);
  return JSON.parse(JSON.stringify(value, (_key, item: unknown) => (isLambda(item) ? undefined : item)));
}

/** JSONata's `$boolean`: empty strings, 0, null, empty arrays and objects, and nothing at all are false. */
export function truthy(value: unknown): boolean {
  if (value === undefined || value === null) return false;
  if (Array.isArray(value)) return value.some(truthy);
  if (isLambda(value)) return false;
  if (typeof value === 'object') return Object.keys(value).length > 0;
  return Boolean(value);
}
