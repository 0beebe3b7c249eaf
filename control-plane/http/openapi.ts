import { z } from '@hono/zod-openapi';
import { errorSchema } from './errors.js';

/** The pieces every route definition repeats: a JSON response, the usual errors, the bearer scheme. */
export const json = <S extends z.ZodType>(schema: S, description: string) => ({ description, content: { 'application/json': { schema } } });

/** A required JSON request body. */
export const jsonBody = <S extends z.ZodType>(schema: S) => ({ required: true, content: { 'application/json': { schema } } });

export const security = [{ bearer: [] }];

export const authErrors = {
  401: json(errorSchema, 'Missing, invalid, expired or revoked token'),
  403: json(errorSchema, 'The token lacks the permission'),
};

export const errors = {
  400: json(errorSchema, 'Bad input: each broken rule has its own message'),
  ...authErrors,
};

export const bodyErrors = {
  413: json(errorSchema, 'The body is larger than BODY_LIMIT_BYTES'),
  415: json(errorSchema, 'The body is not application/json'),
};

export const notFoundError = (what: string) => ({ 404: json(errorSchema, `No ${what} with that id that you may see`) });
export const conflictError = (why: string) => ({ 409: json(errorSchema, why) });

/** A path parameter `id` that must be a UUID. */
export const idParam = (what: string) =>
  z.object({ id: z.uuid().openapi({ param: { name: 'id', in: 'path' }, description: `The ${what} id` }) });

/**
 * Names a protocol schema in the OpenAPI document. protocol/ builds its schemas with plain zod, and
 * a schema built before @hono/zod-openapi was first imported lacks `.openapi`, so it is applied from the prototype.
 */
export const named = <S extends z.ZodType>(schema: S, name: string): S =>
  (z.ZodType.prototype.openapi as (this: S, refId: string) => S).call(schema, name);
