import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { guard, type AppEnv } from '../http/auth.js';
import { badRequest, errorSchema, notFound, validationHook } from '../http/errors.js';
import { authErrors, bodyErrors, json, jsonBody, security } from '../http/openapi.js';
import { login } from './sessions.service.js';

const loginBody = z
  .strictObject({
    username: z.string().min(1).max(320).openapi({ example: 'admin@hookline.local' }),
    password: z.string().min(1).max(1024),
  })
  .openapi('Login');

const sessionResponse = z
  .object({
    data: z.object({
      token: z.string().openapi({ description: 'A signed JWT; send it as Authorization: Bearer <token>' }),
      tokenType: z.literal('Bearer'),
      expiresAt: z.string().openapi({ format: 'date-time' }),
      user: z.object({ id: z.string(), username: z.string(), tenant: z.string().nullable() }),
    }),
  })
  .openapi('Session');

const jwks = z.object({ keys: z.array(z.record(z.string(), z.unknown())) }).openapi('JWKS');

const loginRoute = createRoute({
  method: 'post',
  path: '/login',
  tags: ['iam'],
  summary: 'Log in with a username and password',
  description:
    'Answers a short-lived token (TOKEN_TTL_SECONDS). After LOGIN_MAX_FAILURES wrong passwords in a row the account is locked for LOGIN_LOCK_SECONDS.',
  request: { body: jsonBody(loginBody) },
  responses: {
    200: json(sessionResponse, 'Logged in'),
    400: json(errorSchema, 'Bad input'),
    401: json(errorSchema, 'Wrong username or password, or the account is disabled'),
    429: json(errorSchema, 'The account is locked after too many failed logins; Retry-After says for how long'),
    ...bodyErrors,
  },
});

const logoutRoute = createRoute({
  method: 'post',
  path: '/logout',
  tags: ['iam'],
  summary: 'Revoke the login token this request carries',
  security,
  middleware: guard(),
  responses: { 204: { description: 'The token is revoked' }, 400: json(errorSchema, 'The token is a service token'), ...authErrors },
});

const jwksRoute = createRoute({
  method: 'get',
  path: '/.well-known/jwks.json',
  tags: ['iam'],
  summary: 'The public key that verifies login tokens',
  description: 'Only with JWT_ALGORITHM RS256 or EdDSA; an HS256 key is secret and not published.',
  responses: { 200: json(jwks, 'The JSON Web Key Set'), 404: json(errorSchema, 'Tokens are signed with HS256') },
});

/** Login sessions: /login, /logout and the JWKS that lets other services verify tokens themselves. */
export function sessionRoutes() {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
    .openapi(loginRoute, async (c) => {
      const { username, password } = c.req.valid('json');
      return c.json({ data: await login(c.get('services'), username, password) }, 200);
    })
    .openapi(logoutRoute, async (c) => {
      const principal = c.get('principal');
      if (principal.tokenKind !== 'session') throw badRequest('This is a service token: revoke it with DELETE /api/v1/tokens/{id}');
      const { db, tokens } = c.get('services');
      await tokens.revoke(db, principal.tokenId);
      return c.body(null, 204);
    })
    .openapi(jwksRoute, (c) => {
      const { publicJwk } = c.get('services').signingKey;
      if (!publicJwk) throw notFound('Tokens are signed with HS256, whose key is secret: there is no public key to publish');
      return c.json({ keys: [publicJwk as Record<string, unknown>] }, 200);
    });
}
