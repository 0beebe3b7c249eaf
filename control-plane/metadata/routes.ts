import { OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from '../http/auth.js';
import { validationHook } from '../http/errors.js';
import { domainCrudRoutes } from './domains.routes.js';
import { schemaRoutes } from './schemas.routes.js';

/** The metadata repository: `/api/v1/domains` and the JSON Schemas within them. */
export function domainRoutes() {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook }).route('/', domainCrudRoutes()).route('/', schemaRoutes());
}
