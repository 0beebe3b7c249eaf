import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { guard, type AppEnv } from '../http/auth.js';
import { validationHook } from '../http/errors.js';
import { bodyErrors, errors, idParam, json, jsonBody, notFoundError, security } from '../http/openapi.js';
import { page, pageMetaSchema, pagingQuery } from '../http/paging.js';
import { createServiceToken, getServiceToken, introspect, listServiceTokens, revokeServiceToken } from './tokens.service.js';

const serviceToken = z
  .object({
    id: z.string(),
    accountId: z.string(),
    username: z.string(),
    tenant: z.string().nullable(),
    description: z.string().nullable(),
    createdBy: z.string().nullable(),
    createdAt: z.string().openapi({ format: 'date-time' }),
    expiresAt: z.string().nullable().openapi({ format: 'date-time', description: 'Null: never expires' }),
    revokedAt: z.string().nullable().openapi({ format: 'date-time' }),
  })
  .openapi('ServiceToken');

const createBody = z
  .strictObject({
    accountId: z.uuid().openapi({ description: 'The service account the token authenticates as' }),
    description: z.string().max(500).optional(),
    expiresAt: z.iso
      .datetime({ offset: true, message: 'must be an ISO 8601 date-time with a zone' })
      .transform((value) => new Date(value))
      .optional()
      .openapi({ description: 'Left out: the token never expires' }),
  })
  .openapi('ServiceTokenCreate');

const createdResponse = z
  .object({
    data: serviceToken.extend({ token: z.string().openapi({ description: 'The token itself: shown this once, only its hash is kept' }) }),
  })
  .openapi('ServiceTokenCreated');

const introspection = z
  .object({
    data: z.object({
      active: z.boolean(),
      tokenId: z.string().optional(),
      tokenKind: z.enum(['session', 'service', 'step']).optional(),
      step: z
        .object({ flowId: z.string(), stepId: z.string() })
        .nullable()
        .optional()
        .openapi({ description: 'Step tokens: the step of the flow they act for' }),
      user: z.object({ id: z.string(), username: z.string() }).optional(),
      tenant: z.string().nullable().optional(),
      roles: z.array(z.string()).optional(),
      permissions: z.array(z.string()).optional(),
      expiresAt: z.string().nullable().optional(),
    }),
  })
  .openapi('Introspection');

const tokenId = idParam('token');
const unknownToken = notFoundError('service token');

const create = createRoute({
  method: 'post',
  path: '/',
  tags: ['tokens'],
  summary: 'Mint a permanent token for a service account',
  description: 'Needs iam.token.create, or tenant.token.create for accounts of your tenant that hold only common permissions.',
  security,
  middleware: guard(),
  request: { body: jsonBody(createBody) },
  responses: { 201: json(createdResponse, 'The token, shown once'), ...errors, ...notFoundError('account'), ...bodyErrors },
});

const list = createRoute({
  method: 'get',
  path: '/',
  tags: ['tokens'],
  summary: 'List service tokens (never their secrets)',
  security,
  middleware: guard(),
  request: { query: z.strictObject({ ...pagingQuery, 'filter[accountId]': z.uuid().optional() }) },
  responses: {
    200: json(
      z.object({ data: z.array(serviceToken), meta: pageMetaSchema }).openapi('ServiceTokenList'),
      'A page of tokens, newest first',
    ),
    ...errors,
  },
});

const read = createRoute({
  method: 'get',
  path: '/{id}',
  tags: ['tokens'],
  summary: 'Read a service token',
  security,
  middleware: guard(),
  request: { params: tokenId },
  responses: { 200: json(z.object({ data: serviceToken }).openapi('ServiceTokenResponse'), 'The token'), ...errors, ...unknownToken },
});

const revoke = createRoute({
  method: 'delete',
  path: '/{id}',
  tags: ['tokens'],
  summary: 'Revoke a service token',
  description: 'Takes effect on the next request made with it. Revoking a revoked token is a 204 too.',
  security,
  middleware: guard(),
  request: { params: tokenId },
  responses: { 204: { description: 'Revoked' }, ...errors, ...unknownToken },
});

const introspectRoute = createRoute({
  method: 'post',
  path: '/introspect',
  tags: ['tokens'],
  summary: 'Who a token stands for',
  description:
    'For services that receive Hookline tokens: the user, tenant, roles and permissions of a token that authenticates, or only `active: false` for one that does not (unknown, expired, revoked, forged, disabled account).',
  security,
  middleware: guard('iam.token.introspect'),
  request: { body: jsonBody(z.strictObject({ token: z.string().min(1).max(4096) }).openapi('IntrospectRequest')) },
  responses: { 200: json(introspection, 'The answer'), ...errors, ...bodyErrors },
});

/** `/api/v1/tokens`: service-account tokens and introspection. */
export function tokenRoutes() {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
    .openapi(introspectRoute, async (c) => c.json({ data: await introspect(c.get('services'), c.req.valid('json').token) }, 200))
    .openapi(create, async (c) =>
      c.json({ data: await createServiceToken(c.get('services'), c.get('principal'), c.req.valid('json')) }, 201),
    )
    .openapi(list, async (c) => {
      const query = c.req.valid('query');
      const paging = page(query);
      const { tokens, total } = await listServiceTokens(c.get('services').db, c.get('principal'), {
        accountId: query['filter[accountId]'],
        limit: paging.limit,
        offset: paging.offset,
      });
      return c.json({ data: tokens, meta: paging.meta(total) }, 200);
    })
    .openapi(read, async (c) =>
      c.json({ data: await getServiceToken(c.get('services').db, c.get('principal'), c.req.valid('param').id) }, 200),
    )
    .openapi(revoke, async (c) => {
      await revokeServiceToken(c.get('services'), c.get('principal'), c.req.valid('param').id);
      return c.body(null, 204);
    });
}
