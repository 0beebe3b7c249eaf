import type { MiddlewareHandler } from 'hono';
import { jsonProblem, textProblem } from '../../protocol/storable.js';
import type { AppEnv } from './auth.js';
import { badRequest } from './errors.js';

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

/**
 * Refuses, with a 400 naming the field, input no route could store: a NUL character or a lone
 * surrogate in the path, a query parameter or any string of a JSON body, and JSON nested too deep
 * (protocol/storable.ts). Before any route runs, so no handler, query or log ever sees it. The
 * parsed body is cached by hono, so the route's own validation does not parse it again.
 */
export function refuseUnstorableInput(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const path = safeDecode(c.req.path);
    const pathProblem = textProblem(path);
    if (pathProblem) throw badRequest(`path: ${pathProblem}`);
    for (const [name, values] of Object.entries(c.req.queries())) {
      const problem = textProblem(name) ?? values.map(textProblem).find(Boolean);
      if (problem) throw badRequest(`query ${name}: ${problem}`);
    }
    if (!hasNoBody(c.req.method) && JSON_TYPE.test(c.req.header('content-type') ?? '')) {
      // A malformed body is left to the route's validation, which says so in its own words.
      const body = await c.req.json().catch(() => undefined);
      const problem = body === undefined ? null : jsonProblem(body, 'body');
      if (problem) throw badRequest(problem);
    }
    await next();
  };
}

/** GET and HEAD requests carry no body (Node's server hands the app none), whatever their content-type says. */
export const hasNoBody = (method: string) => method === 'GET' || method === 'HEAD';

function safeDecode(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}
