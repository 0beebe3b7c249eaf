import type { Hook } from '@hono/zod-openapi';
import { z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { HTTPException } from 'hono/http-exception';
import type { Logger } from '../logger.js';

/** An error the caller caused or may see: its status and message go out as `{ errors: [{ message, code }] }`. */
export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    message: string,
    readonly code: string,
    /** Extra response headers, such as Retry-After on a 429. */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const badRequest = (message: string) => new ApiError(400, message, 'bad_request');
export const unauthorized = (message: string) => new ApiError(401, message, 'unauthorized');
export const forbidden = (message: string) => new ApiError(403, message, 'forbidden');
export const notFound = (message: string) => new ApiError(404, message, 'not_found');
export const conflict = (message: string) => new ApiError(409, message, 'conflict');
export const tooManyRequests = (message: string, retryAfterSeconds: number) =>
  new ApiError(429, message, 'too_many_requests', { 'retry-after': String(retryAfterSeconds) });

export interface ErrorItem {
  message: string;
  code: string;
}
export const errorBody = (...errors: ErrorItem[]) => ({ errors });

export const errorSchema = z.object({ errors: z.array(z.object({ message: z.string(), code: z.string() })) }).openapi('Errors');

const CODES: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
};

/** Turns every thrown error into the error envelope; only unexpected ones are logged as errors and answered 500. */
export function errorHandler(logger: Logger) {
  return (error: Error, c: Context): Response => {
    if (error instanceof ApiError) return c.json(errorBody({ message: error.message, code: error.code }), error.status, error.headers);
    if (error instanceof HTTPException && error.status < 500) {
      const status = error.status as ContentfulStatusCode;
      return c.json(errorBody({ message: error.message || 'Bad request', code: CODES[status] ?? 'bad_request' }), status);
    }
    logger.error({ err: error, requestId: c.get('requestId'), path: c.req.path }, 'request failed');
    return c.json(errorBody({ message: `Internal error (request id ${c.get('requestId') ?? 'unknown'})`, code: 'internal' }), 500);
  };
}

type Issue = z.core.$ZodIssue;

/** One message per broken rule, naming where: `graph.nodes.0.id: Too big...`; rule messages (custom issues) say it themselves. */
export function describeIssue(issue: Issue, target: string): string {
  if (issue.code === 'custom') return issue.message;
  const where = issue.path.length > 0 ? issue.path.map(String).join('.') : target;
  return `${where}: ${issue.message}`;
}

// biome-ignore lint/suspicious/noExplicitAny: zod-openapi's Hook is generic over every route's env and output; one hook serves them all.
export const validationHook: Hook<unknown, any, string, any> = (result, c) => {
  if (result.success) return;
  const target = result.target === 'json' ? 'body' : String(result.target);
  const errors = (result.error as z.ZodError).issues.map((issue) => ({ message: describeIssue(issue, target), code: 'validation_error' }));
  return c.json(errorBody(...errors), 400);
};
