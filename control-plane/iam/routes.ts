import { OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from '../http/auth.js';
import { validationHook } from '../http/errors.js';
import { sessionRoutes } from './sessions.routes.js';
import { tokenRoutes } from './tokens.routes.js';

/** IAM's HTTP surface: /login, /logout, /.well-known/jwks.json and /api/v1/tokens. */
export function iamRoutes() {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
    .route('/', sessionRoutes())
    .route('/api/v1/tokens', tokenRoutes());
}
