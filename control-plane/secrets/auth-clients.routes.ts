import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { guard, type AppEnv } from '../http/auth.js';
import { errorSchema, validationHook } from '../http/errors.js';
import { bodyErrors, errors, idParam, json, jsonBody, notFoundError, security } from '../http/openapi.js';
import { page, pageMetaSchema, pagingQuery } from '../http/paging.js';
import {
  completeFlow,
  createAuthClient,
  deleteAuthClient,
  getAuthClient,
  listAuthClients,
  startFlow,
  updateAuthClient,
} from './auth-clients.service.js';

const authClient = z
  .object({
    id: z.string(),
    name: z.string(),
    tenant: z.string(),
    clientId: z.string(),
    clientSecret: z.string().openapi({ description: 'Masked unless you hold secrets.authClient.readRaw' }),
    authorizationEndpoint: z.string(),
    tokenEndpoint: z.string(),
    scopes: z.array(z.string()),
    createdAt: z.string().openapi({ format: 'date-time' }),
    updatedAt: z.string().openapi({ format: 'date-time' }),
  })
  .openapi('AuthClient');
const clientResponse = z.object({ data: authClient }).openapi('AuthClientResponse');

const endpoint = z.url({ protocol: /^https?$/, message: 'must be an http(s) URL' });
const fields = {
  name: z.string().trim().min(1).max(200),
  clientId: z.string().min(1).max(500),
  clientSecret: z.string().min(1).max(2000),
  authorizationEndpoint: endpoint,
  tokenEndpoint: endpoint,
  scopes: z.array(z.string().min(1).max(200)).max(50),
};
const createBody = z.strictObject({ ...fields, scopes: fields.scopes.default([]) }).openapi('AuthClientCreate');
const patchBody = z
  .strictObject(
    Object.fromEntries(Object.entries(fields).map(([key, schema]) => [key, schema.optional()])) as {
      [K in keyof typeof fields]: z.ZodOptional<(typeof fields)[K]>;
    },
  )
  .openapi('AuthClientPatch');

const startBody = z
  .strictObject({
    secretName: z.string().trim().min(1).max(200).openapi({ description: 'The name of the OAUTH2 secret the flow creates' }),
    scope: z.string().max(1000).optional().openapi({ description: 'Space-separated; defaults to the client’s scopes' }),
    successUrl: endpoint.optional().openapi({ description: 'Where the user is sent afterwards, with ?secretId=' }),
  })
  .openapi('AuthFlowStart');

const clientId = idParam('auth client');
const unknownClient = notFoundError('auth client');

const list = createRoute({
  method: 'get',
  path: '/',
  tags: ['auth-clients'],
  summary: 'List your tenant’s OAuth2 clients',
  security,
  middleware: guard('secrets.secret.read'),
  request: { query: z.strictObject(pagingQuery) },
  responses: {
    200: json(z.object({ data: z.array(authClient), meta: pageMetaSchema }).openapi('AuthClientList'), 'A page of auth clients'),
    ...errors,
  },
});

const create = createRoute({
  method: 'post',
  path: '/',
  tags: ['auth-clients'],
  summary: 'Register an OAuth2 client of another application',
  description: 'Register `<control plane URL>/callback` as the redirect URI at the provider.',
  security,
  middleware: guard('secrets.secret.write'),
  request: { body: jsonBody(createBody) },
  responses: { 201: json(clientResponse, 'The client, its secret masked'), ...errors, ...bodyErrors },
});

const read = createRoute({
  method: 'get',
  path: '/{id}',
  tags: ['auth-clients'],
  summary: 'Read an auth client',
  security,
  middleware: guard('secrets.secret.read'),
  request: { params: clientId },
  responses: { 200: json(clientResponse, 'The client'), ...errors, ...unknownClient },
});

const patch = createRoute({
  method: 'patch',
  path: '/{id}',
  tags: ['auth-clients'],
  summary: 'Change an auth client',
  description:
    'Changing authorizationEndpoint or tokenEndpoint needs secrets.authClient.readRaw, or clientSecret in the same request (it replaces the stored one), so the stored client secret never goes to an endpoint its caller chose (403 otherwise).',
  security,
  middleware: guard('secrets.secret.write'),
  request: { params: clientId, body: jsonBody(patchBody) },
  responses: { 200: json(clientResponse, 'The client'), ...errors, ...unknownClient, ...bodyErrors },
});

const remove = createRoute({
  method: 'delete',
  path: '/{id}',
  tags: ['auth-clients'],
  summary: 'Delete an auth client; its secrets stay but are no longer refreshed',
  security,
  middleware: guard('secrets.secret.write'),
  request: { params: clientId },
  responses: { 204: { description: 'Deleted' }, ...errors, ...unknownClient },
});

const start = createRoute({
  method: 'post',
  path: '/{id}/start-flow',
  tags: ['auth-clients'],
  summary: 'Start the authorization-code flow: the URL to send the user to',
  description:
    'The URL carries a signed state valid for 10 minutes. When the provider sends the user back to /callback, the tokens become an OAUTH2 secret owned by you.',
  security,
  middleware: guard('secrets.secret.write'),
  request: { params: clientId, body: jsonBody(startBody) },
  responses: {
    200: json(z.object({ data: z.object({ authUrl: z.string(), expiresAt: z.string() }) }).openapi('AuthFlowStarted'), 'The URL'),
    ...errors,
    ...unknownClient,
    ...bodyErrors,
  },
});

const callback = createRoute({
  method: 'get',
  path: '/callback',
  tags: ['auth-clients'],
  summary: 'Where the OAuth2 provider sends the user back (no token: the signed state authenticates it)',
  request: {
    query: z.object({
      state: z.string().min(1).max(8000),
      code: z.string().max(4000).optional(),
      error: z.string().max(200).optional(),
      error_description: z.string().max(2000).optional(),
    }),
  },
  responses: {
    200: json(z.object({ data: z.object({ secretId: z.string() }) }).openapi('AuthFlowDone'), 'The secret was created (no successUrl)'),
    302: { description: 'To the successUrl, with ?secretId=' },
    400: json(errorSchema, 'Invalid or expired state, the provider refused, or the code exchange failed'),
  },
});

/** `/api/v1/auth-clients`: OAuth2 clients and their authorization-code flow. */
export function authClientRoutes() {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
    .openapi(list, async (c) => {
      const paging = page(c.req.valid('query'));
      const { clients, total } = await listAuthClients(c.get('services'), c.get('principal'), paging);
      return c.json({ data: clients, meta: paging.meta(total) }, 200);
    })
    .openapi(create, async (c) => c.json({ data: await createAuthClient(c.get('services'), c.get('principal'), c.req.valid('json')) }, 201))
    .openapi(read, async (c) => c.json({ data: await getAuthClient(c.get('services'), c.get('principal'), c.req.valid('param').id) }, 200))
    .openapi(patch, async (c) =>
      c.json({ data: await updateAuthClient(c.get('services'), c.get('principal'), c.req.valid('param').id, c.req.valid('json')) }, 200),
    )
    .openapi(remove, async (c) => {
      await deleteAuthClient(c.get('services'), c.get('principal'), c.req.valid('param').id);
      return c.body(null, 204);
    })
    .openapi(start, async (c) => {
      const services = c.get('services');
      const redirectUri = `${services.config.PUBLIC_URL ?? new URL(c.req.url).origin}/callback`;
      return c.json(
        { data: await startFlow(services, c.get('principal'), c.req.valid('param').id, { ...c.req.valid('json'), redirectUri }) },
        200,
      );
    });
}

/** `GET /callback`, at the root as OIH has it. */
export function oauthCallbackRoutes() {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook }).openapi(callback, async (c) => {
    const query = c.req.valid('query');
    const { secret, successUrl } = await completeFlow(c.get('services'), {
      state: query.state,
      code: query.code,
      error: query.error,
      errorDescription: query.error_description,
    });
    if (!successUrl) return c.json({ data: { secretId: secret.id } }, 200);
    const target = new URL(successUrl);
    target.searchParams.set('secretId', secret.id);
    return c.redirect(target.toString(), 302);
  });
}
