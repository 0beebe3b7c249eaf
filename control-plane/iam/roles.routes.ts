import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { ALL_PERMISSIONS, isCommonPermission } from '../../protocol/permissions.js';
import { guard, type AppEnv } from '../http/auth.js';
import { validationHook } from '../http/errors.js';
import { authErrors, bodyErrors, conflictError, errors, idParam, json, jsonBody, notFoundError, security } from '../http/openapi.js';
import { page, pageMetaSchema, pagingQuery } from '../http/paging.js';
import { createRole, deleteRole, getRole, listRoles, updateRole } from './roles.service.js';

const role = z
  .object({
    id: z.string(),
    name: z.string(),
    description: z.string().nullable(),
    tenant: z.string().nullable().openapi({ description: 'Null for a global role' }),
    permissions: z.array(z.string()),
    isSystem: z.boolean().openapi({ description: 'System roles (ADMIN, TENANT_ADMIN...) cannot be changed' }),
    createdAt: z.string().openapi({ format: 'date-time' }),
    updatedAt: z.string().openapi({ format: 'date-time' }),
  })
  .openapi('Role');
const roleResponse = z.object({ data: role }).openapi('RoleResponse');

const name = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1 to 64 letters, digits, _ . or -')
  .openapi({ example: 'FLOW_OPERATOR' });
const description = z.string().max(500);
const permissions = z.array(z.string().min(1).max(100)).max(100).openapi({ description: 'Permission names (GET /api/v1/permissions)' });

const permissionList = z
  .object({
    data: z.array(
      z.object({
        name: z.string(),
        restricted: z
          .boolean()
          .openapi({ description: 'Not covered by tenant.all: only holders of `all` or of the permission itself have it to grant' }),
      }),
    ),
  })
  .openapi('PermissionList');

const roleId = idParam('role');
const unknownRole = notFoundError('role');

const listPermissions = createRoute({
  method: 'get',
  path: '/permissions',
  tags: ['roles'],
  summary: 'Every permission there is',
  security,
  middleware: guard(),
  responses: { 200: json(permissionList, 'The catalogue'), ...authErrors },
});

const list = createRoute({
  method: 'get',
  path: '/roles',
  tags: ['roles'],
  summary: 'List roles',
  description: 'With iam.role.read every role; with tenant.roles.read the global roles and your tenant’s.',
  security,
  middleware: guard(),
  request: {
    query: z.strictObject({
      ...pagingQuery,
      'filter[tenant]': z.uuid().optional().openapi({ description: 'Only the roles of this tenant' }),
    }),
  },
  responses: {
    200: json(z.object({ data: z.array(role), meta: pageMetaSchema }).openapi('RoleList'), 'A page of roles, by name'),
    ...errors,
  },
});

const create = createRoute({
  method: 'post',
  path: '/roles',
  tags: ['roles'],
  summary: 'Create a role',
  description:
    'tenant.roles.create: a role of your tenant. iam.role.create: in any tenant, or global without `tenant`. A role holds only permissions you hold (403 naming what you lack).',
  security,
  middleware: guard(),
  request: {
    body: jsonBody(
      z
        .strictObject({
          name,
          description: description.optional(),
          permissions: permissions.default([]),
          tenant: z.uuid().optional().openapi({ description: 'Defaults to yours; admins may leave it out for a global role' }),
        })
        .openapi('RoleCreate'),
    ),
  },
  responses: {
    201: json(roleResponse, 'The role'),
    ...errors,
    ...conflictError('A role of that name exists in that tenant'),
    ...bodyErrors,
  },
});

const read = createRoute({
  method: 'get',
  path: '/roles/{id}',
  tags: ['roles'],
  summary: 'Read a role',
  security,
  middleware: guard(),
  request: { params: roleId },
  responses: { 200: json(roleResponse, 'The role'), ...errors, ...unknownRole },
});

const patch = createRoute({
  method: 'patch',
  path: '/roles/{id}',
  tags: ['roles'],
  summary: 'Change a role',
  description:
    'The change applies to every holder at their next request. Only if you hold every permission of the role, of its new list and of every account holding it.',
  security,
  middleware: guard(),
  request: {
    params: roleId,
    body: jsonBody(
      z
        .strictObject({ name: name.optional(), description: description.optional(), permissions: permissions.optional() })
        .openapi('RolePatch'),
    ),
  },
  responses: {
    200: json(roleResponse, 'The role as stored'),
    ...errors,
    ...unknownRole,
    ...conflictError('A system role, or the name is taken'),
    ...bodyErrors,
  },
});

const remove = createRoute({
  method: 'delete',
  path: '/roles/{id}',
  tags: ['roles'],
  summary: 'Delete a role; its holders lose it',
  description: 'Only if you hold every permission of the role and of every account holding it.',
  security,
  middleware: guard(),
  request: { params: roleId },
  responses: { 204: { description: 'Deleted' }, ...errors, ...unknownRole, ...conflictError('A system role') },
});

/** `/api/v1/roles` and the permission catalogue `/api/v1/permissions`. */
export function roleRoutes() {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
    .openapi(listPermissions, (c) =>
      c.json({ data: ALL_PERMISSIONS.map((name) => ({ name, restricted: !isCommonPermission(name) })) }, 200),
    )
    .openapi(list, async (c) => {
      const query = c.req.valid('query');
      const paging = page(query);
      const { roles, total } = await listRoles(c.get('services').db, c.get('principal'), {
        tenant: query['filter[tenant]'],
        limit: paging.limit,
        offset: paging.offset,
      });
      return c.json({ data: roles, meta: paging.meta(total) }, 200);
    })
    .openapi(create, async (c) => c.json({ data: await createRole(c.get('services'), c.get('principal'), c.req.valid('json')) }, 201))
    .openapi(read, async (c) => c.json({ data: await getRole(c.get('services').db, c.get('principal'), c.req.valid('param').id) }, 200))
    .openapi(patch, async (c) =>
      c.json({ data: await updateRole(c.get('services'), c.get('principal'), c.req.valid('param').id, c.req.valid('json')) }, 200),
    )
    .openapi(remove, async (c) => {
      await deleteRole(c.get('services'), c.get('principal'), c.req.valid('param').id);
      return c.body(null, 204);
    });
}
