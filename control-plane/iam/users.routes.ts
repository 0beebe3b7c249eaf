import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { guard, type AppEnv } from '../http/auth.js';
import { errorSchema, validationHook } from '../http/errors.js';
import { bodyErrors, conflictError, errors, idParam, json, jsonBody, notFoundError, security } from '../http/openapi.js';
import { page, pageMetaSchema, pagingQuery } from '../http/paging.js';
import { createAccount, deleteAccount, getAccount, listAccounts, updateAccount } from './users.service.js';

const account = z
  .object({
    id: z.string(),
    username: z.string(),
    kind: z.enum(['person', 'service']),
    firstname: z.string().nullable(),
    lastname: z.string().nullable(),
    status: z.enum(['active', 'disabled']),
    tenant: z.string().nullable(),
    roles: z.array(z.string()).openapi({ description: 'Names of the roles held' }),
    permissions: z.array(z.string()).openapi({ description: 'Permissions granted directly, on top of the roles' }),
    lastLoginAt: z.string().nullable().openapi({ format: 'date-time' }),
    createdAt: z.string().openapi({ format: 'date-time' }),
    updatedAt: z.string().openapi({ format: 'date-time' }),
  })
  .openapi('User');
const accountResponse = z.object({ data: account }).openapi('UserResponse');

const username = z
  .string()
  .trim()
  .min(3)
  .max(320)
  .regex(/^[^\s]+$/, 'must not contain spaces')
  .openapi({ description: 'Login name, usually an email address; stored in lower case', example: 'ada@example.com' });
const password = z.string().min(12, 'must be at least 12 characters').max(1024).openapi({
  description:
    'At least 12 characters, and not easy to guess: no common password, pattern, or part of the username or names (a 400 says why)',
});
const name = z.string().trim().max(200);
const roleNames = z
  .array(z.string().min(1).max(64))
  .max(50)
  .openapi({ description: 'Role names or ids: global roles, or roles of the user’s tenant' });
const permissionNames = z.array(z.string().min(1).max(100)).max(100).openapi({ description: 'Permissions granted directly' });

const createBody = z
  .strictObject({
    username,
    kind: z
      .enum(['person', 'service'])
      .default('person')
      .openapi({ description: 'person (logs in with a password) or service (uses tokens)' }),
    password: password.optional().openapi({ description: 'Required for a person, refused for a service account' }),
    firstname: name.optional(),
    lastname: name.optional(),
    tenant: z
      .uuid()
      .nullable()
      .optional()
      .openapi({
        description:
          'Required for holders of iam.account.create: a tenant, or null for an account of no tenant (a platform-wide runner’s). ' +
          'Tenant admins may leave it out or name their own.',
      }),
    roles: roleNames.default([]),
    permissions: permissionNames.default([]),
  })
  .openapi('UserCreate');

const patchBody = z
  .strictObject({
    username: username.optional(),
    password: password.optional(),
    currentPassword: z
      .string()
      .min(1)
      .max(1024)
      .optional()
      .openapi({ description: 'Your current password: required to change your own, refused otherwise' }),
    firstname: name.optional(),
    lastname: name.optional(),
    status: z
      .enum(['active', 'disabled'])
      .optional()
      .openapi({ description: 'disabled: no login, and every token of the account stops working' }),
    roles: roleNames.optional().openapi({ description: 'Replaces the roles held' }),
    permissions: permissionNames.optional().openapi({ description: 'Replaces the direct permissions' }),
  })
  .openapi('UserPatch');

const userId = idParam('user');
const unknownUser = notFoundError('user');

const list = createRoute({
  method: 'get',
  path: '/',
  tags: ['users'],
  summary: 'List users',
  description: 'Needs iam.account.read (every tenant) or tenant.account.read (your tenant). Sorted by username.',
  security,
  middleware: guard(),
  request: {
    query: z.strictObject({
      ...pagingQuery,
      'filter[tenant]': z.uuid().optional().openapi({ description: 'Only users of this tenant' }),
      search: z.string().max(200).optional().openapi({ description: 'Case-insensitive text in username, first or last name' }),
    }),
  },
  responses: { 200: json(z.object({ data: z.array(account), meta: pageMetaSchema }).openapi('UserList'), 'A page of users'), ...errors },
});

const me = createRoute({
  method: 'get',
  path: '/me',
  tags: ['users'],
  summary: 'The account of the token you call with',
  security,
  middleware: guard(),
  responses: { 200: json(accountResponse, 'Your account'), ...errors },
});

const create = createRoute({
  method: 'post',
  path: '/',
  tags: ['users'],
  summary: 'Create a user or a service account',
  description:
    'Needs iam.account.create, or tenant.account.create for your own tenant. You may grant only permissions you hold, and assign only roles whose permissions you hold (403 naming what you lack).',
  security,
  middleware: guard(),
  request: { body: jsonBody(createBody) },
  responses: { 201: json(accountResponse, 'The user as stored'), ...errors, ...conflictError('The username is taken'), ...bodyErrors },
});

const read = createRoute({
  method: 'get',
  path: '/{id}',
  tags: ['users'],
  summary: 'Read a user',
  security,
  middleware: guard(),
  request: { params: userId },
  responses: { 200: json(accountResponse, 'The user'), ...errors, ...unknownUser },
});

const patch = createRoute({
  method: 'patch',
  path: '/{id}',
  tags: ['users'],
  summary: 'Change a user',
  description:
    'You may change your own names without any permission, and your own password by giving `currentPassword` (a wrong one counts as a failed login). Everything else needs iam.account.update, or tenant.account.update within your tenant; you may grant only what you hold, and not change an account that holds a permission you lack. A new password or `disabled` ends the account’s login sessions.',
  security,
  middleware: guard(),
  request: { params: userId, body: jsonBody(patchBody) },
  responses: {
    200: json(accountResponse, 'The user as stored'),
    ...errors,
    ...unknownUser,
    ...conflictError('The username is taken, or you tried to disable yourself'),
    429: json(errorSchema, 'Your account is locked after too many failed logins or wrong current passwords; Retry-After says for how long'),
    ...bodyErrors,
  },
});

const remove = createRoute({
  method: 'delete',
  path: '/{id}',
  tags: ['users'],
  summary: 'Delete a user, with their roles and tokens',
  security,
  middleware: guard(),
  request: { params: userId },
  responses: { 204: { description: 'Deleted' }, ...errors, ...unknownUser, ...conflictError('You tried to delete yourself') },
});

/** `/api/v1/users`: people and service accounts. */
export function userRoutes() {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
    .openapi(me, async (c) => c.json({ data: await getAccount(c.get('services').db, c.get('principal'), c.get('principal').userId) }, 200))
    .openapi(list, async (c) => {
      const query = c.req.valid('query');
      const paging = page(query);
      const { users, total } = await listAccounts(c.get('services').db, c.get('principal'), {
        tenant: query['filter[tenant]'],
        search: query.search,
        limit: paging.limit,
        offset: paging.offset,
      });
      return c.json({ data: users, meta: paging.meta(total) }, 200);
    })
    .openapi(create, async (c) => c.json({ data: await createAccount(c.get('services'), c.get('principal'), c.req.valid('json')) }, 201))
    .openapi(read, async (c) => c.json({ data: await getAccount(c.get('services').db, c.get('principal'), c.req.valid('param').id) }, 200))
    .openapi(patch, async (c) =>
      c.json({ data: await updateAccount(c.get('services'), c.get('principal'), c.req.valid('param').id, c.req.valid('json')) }, 200),
    )
    .openapi(remove, async (c) => {
      await deleteAccount(c.get('services'), c.get('principal'), c.req.valid('param').id);
      return c.body(null, 204);
    });
}
