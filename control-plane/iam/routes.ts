import { OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from '../http/auth.js';
import { validationHook } from '../http/errors.js';
import { roleRoutes } from './roles.routes.js';
import { sessionRoutes } from './sessions.routes.js';
import { tenantRoutes } from './tenants.routes.js';
import { tokenRoutes } from './tokens.routes.js';
import { userRoutes } from './users.routes.js';

/** IAM's HTTP surface: /login, /logout, /.well-known/jwks.json and /api/v1/{users,tenants,roles,permissions,tokens}. */
export function iamRoutes() {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
    .route('/', sessionRoutes())
    .route('/api/v1/tokens', tokenRoutes())
    .route('/api/v1/users', userRoutes())
    .route('/api/v1/tenants', tenantRoutes())
    .route('/api/v1', roleRoutes());
}
