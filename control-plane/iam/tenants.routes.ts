import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { guard, type AppEnv } from '../http/auth.js';
import { validationHook } from '../http/errors.js';
import { bodyErrors, conflictError, errors, idParam, json, jsonBody, notFoundError, security } from '../http/openapi.js';
import { page, pageMetaSchema, pagingQuery } from '../http/paging.js';
import { createTenant, deleteTenant, getTenant, listTenants, updateTenant } from './tenants.service.js';

const tenant = z
  .object({
    id: z.string(),
    name: z.string(),
    status: z.enum(['active', 'disabled']),
    createdAt: z.string().openapi({ format: 'date-time' }),
    updatedAt: z.string().openapi({ format: 'date-time' }),
  })
  .openapi('Tenant');
const tenantResponse = z.object({ data: tenant }).openapi('TenantResponse');
const name = z.string().trim().min(1).max(100).openapi({ example: 'acme' });

const tenantId = idParam('tenant');
const unknownTenant = notFoundError('tenant');

const list = createRoute({
  method: 'get',
  path: '/',
  tags: ['tenants'],
  summary: 'List tenants',
  description: 'Every tenant with iam.tenant.read; your own with tenant.profile.read.',
  security,
  middleware: guard(),
  request: { query: z.strictObject(pagingQuery) },
  responses: {
    200: json(z.object({ data: z.array(tenant), meta: pageMetaSchema }).openapi('TenantList'), 'A page of tenants, by name'),
    ...errors,
  },
});

const create = createRoute({
  method: 'post',
  path: '/',
  tags: ['tenants'],
  summary: 'Create a tenant',
  security,
  middleware: guard('iam.tenant.create'),
  request: { body: jsonBody(z.strictObject({ name }).openapi('TenantCreate')) },
  responses: { 201: json(tenantResponse, 'The tenant'), ...errors, ...conflictError('The name is taken'), ...bodyErrors },
});

const read = createRoute({
  method: 'get',
  path: '/{id}',
  tags: ['tenants'],
  summary: 'Read a tenant',
  security,
  middleware: guard(),
  request: { params: tenantId },
  responses: { 200: json(tenantResponse, 'The tenant'), ...errors, ...unknownTenant },
});

const patch = createRoute({
  method: 'patch',
  path: '/{id}',
  tags: ['tenants'],
  summary: 'Rename a tenant, or disable or enable it',
  description:
    'tenant.profile.update renames your own tenant; iam.tenant.update changes any tenant, status included. A disabled tenant’s tokens stop working.',
  security,
  middleware: guard(),
  request: {
    params: tenantId,
    body: jsonBody(z.strictObject({ name: name.optional(), status: z.enum(['active', 'disabled']).optional() }).openapi('TenantPatch')),
  },
  responses: {
    200: json(tenantResponse, 'The tenant as stored'),
    ...errors,
    ...unknownTenant,
    ...conflictError('The name is taken, or you tried to disable your own tenant'),
    ...bodyErrors,
  },
});

const remove = createRoute({
  method: 'delete',
  path: '/{id}',
  tags: ['tenants'],
  summary: 'Delete a tenant with its users, roles and flows',
  description: 'Refused (409) while any of its flows is not inactive, and for your own tenant.',
  security,
  middleware: guard('iam.tenant.delete'),
  request: { params: tenantId },
  responses: {
    204: { description: 'Deleted' },
    ...errors,
    ...unknownTenant,
    ...conflictError('Flows of the tenant are running, or it is your own'),
  },
});

/** `/api/v1/tenants`. */
export function tenantRoutes() {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
    .openapi(list, async (c) => {
      const paging = page(c.req.valid('query'));
      const { tenants, total } = await listTenants(c.get('services').db, c.get('principal'), paging);
      return c.json({ data: tenants, meta: paging.meta(total) }, 200);
    })
    .openapi(create, async (c) =>
      c.json({ data: await createTenant(c.get('services'), c.get('principal'), c.req.valid('json').name) }, 201),
    )
    .openapi(read, async (c) => c.json({ data: await getTenant(c.get('services').db, c.get('principal'), c.req.valid('param').id) }, 200))
    .openapi(patch, async (c) =>
      c.json({ data: await updateTenant(c.get('services'), c.get('principal'), c.req.valid('param').id, c.req.valid('json')) }, 200),
    )
    .openapi(remove, async (c) => {
      await deleteTenant(c.get('services'), c.get('principal'), c.req.valid('param').id);
      return c.body(null, 204);
    });
}
