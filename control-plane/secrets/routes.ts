import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { SECRET_TYPES } from '../../protocol/secrets.js';
import { guard, guardAllowingSteps, type AppEnv } from '../http/auth.js';
import { validationHook } from '../http/errors.js';
import { bodyErrors, conflictError, errors, idParam, json, jsonBody, notFoundError, security } from '../http/openapi.js';
import { page, pageMetaSchema, pagingQuery } from '../http/paging.js';
import { transact } from '../services.js';
import { addOwner, createSecret, deleteSecret, listSecrets, readSecret, removeOwner, updateSecret } from './service.js';

const secret = z
  .object({
    id: z.string(),
    name: z.string(),
    type: z.enum(SECRET_TYPES),
    tenant: z.string(),
    owners: z.array(z.object({ id: z.string(), type: z.enum(['user', 'tenant']) })),
    value: z.record(z.string(), z.unknown()).openapi({ description: 'Masked unless you hold secrets.secret.readRaw (single reads only)' }),
    raw: z.boolean().openapi({ description: 'Whether value is unmasked' }),
    authClientId: z.string().nullable(),
    expiresAt: z.string().nullable().openapi({ format: 'date-time', description: 'OAUTH2: when the access token expires' }),
    lastError: z.string().nullable().openapi({ description: 'OAUTH2: why the last refresh failed' }),
    createdAt: z.string().openapi({ format: 'date-time' }),
    updatedAt: z.string().openapi({ format: 'date-time' }),
  })
  .openapi('Secret');
const secretResponse = z.object({ data: secret }).openapi('SecretResponse');

const name = z.string().trim().min(1).max(200);
const value = z.record(z.string(), z.unknown()).openapi({
  description:
    'SIMPLE: { username, passphrase }; API_KEY: { key, headerName? }; MIXED: { payload: {...} }; OAUTH2: { accessToken, refreshToken?, tokenType?, scope?, expiresAt? }',
});

const createBody = z
  .strictObject({
    name,
    type: z.enum(SECRET_TYPES),
    value,
    shared: z.boolean().default(false).openapi({ description: 'Share with every member of your tenant' }),
    authClientId: z.uuid().optional().openapi({ description: 'OAUTH2: the auth client that refreshes it' }),
  })
  .openapi('SecretCreate');

const secretId = idParam('secret');
const unknownSecret = notFoundError('secret');

const list = createRoute({
  method: 'get',
  path: '/',
  tags: ['secrets'],
  summary: 'List the secrets you own or your tenant shares, masked',
  security,
  middleware: guard('secrets.secret.read'),
  request: { query: z.strictObject({ ...pagingQuery, 'filter[type]': z.enum(SECRET_TYPES).optional() }) },
  responses: {
    200: json(z.object({ data: z.array(secret), meta: pageMetaSchema }).openapi('SecretList'), 'A page of secrets, newest first'),
    ...errors,
  },
});

const create = createRoute({
  method: 'post',
  path: '/',
  tags: ['secrets'],
  summary: 'Store a credential, encrypted',
  security,
  middleware: guard('secrets.secret.write'),
  request: { body: jsonBody(createBody) },
  responses: { 201: json(secretResponse, 'The secret, masked'), ...errors, ...bodyErrors },
});

const read = createRoute({
  method: 'get',
  path: '/{id}',
  tags: ['secrets'],
  summary: 'Read a secret',
  description:
    'Unmasked for holders of secrets.secret.readRaw, and for a step token reading the credential its step names; every such read is recorded in the audit log (secrets.secret.rawRead). An OAUTH2 token that expires within 5 minutes is refreshed first; a failed refresh shows in lastError.',
  security,
  middleware: guardAllowingSteps('secrets.secret.read'),
  request: { params: secretId },
  responses: { 200: json(secretResponse, 'The secret'), ...errors, ...unknownSecret },
});

const patch = createRoute({
  method: 'patch',
  path: '/{id}',
  tags: ['secrets'],
  summary: 'Rename a secret, replace its value, or share it with your tenant',
  security,
  middleware: guard('secrets.secret.write'),
  request: {
    params: secretId,
    body: jsonBody(
      z.strictObject({ name: name.optional(), value: value.optional(), shared: z.boolean().optional() }).openapi('SecretPatch'),
    ),
  },
  responses: {
    200: json(secretResponse, 'The secret, masked'),
    ...errors,
    ...unknownSecret,
    ...conflictError('It would be left without an owner'),
    ...bodyErrors,
  },
});

const remove = createRoute({
  method: 'delete',
  path: '/{id}',
  tags: ['secrets'],
  summary: 'Delete a secret',
  security,
  middleware: guard('secrets.secret.write'),
  request: { params: secretId },
  responses: { 204: { description: 'Deleted' }, ...errors, ...unknownSecret },
});

const addOwnerRoute = createRoute({
  method: 'post',
  path: '/{id}/owners',
  tags: ['secrets'],
  summary: 'Add a user of the secret’s tenant as an owner',
  security,
  middleware: guard('secrets.secret.write'),
  request: {
    params: secretId,
    body: jsonBody(z.strictObject({ id: z.uuid().openapi({ description: 'The user' }) }).openapi('SecretOwner')),
  },
  responses: { 200: json(secretResponse, 'The secret, masked'), ...errors, ...unknownSecret, ...bodyErrors },
});

const removeOwnerRoute = createRoute({
  method: 'delete',
  path: '/{id}/owners/{ownerId}',
  tags: ['secrets'],
  summary: 'Remove an owner (a user, or the tenant)',
  security,
  middleware: guard('secrets.secret.write'),
  request: { params: secretId.extend({ ownerId: z.uuid().openapi({ param: { name: 'ownerId', in: 'path' } }) }) },
  responses: {
    200: json(secretResponse, 'The secret, masked'),
    ...errors,
    ...unknownSecret,
    ...conflictError('It would be left without an owner'),
  },
});

const rotate = createRoute({
  method: 'post',
  path: '/master-key/rotate',
  tags: ['secrets'],
  summary: 'Re-wrap every tenant’s data key with the current master key',
  description:
    'Run once every replica runs with the new SECRETS_MASTER_KEY and the old one in SECRETS_OLD_MASTER_KEYS. Secrets are not re-encrypted and stay readable throughout; afterwards the old key can be dropped.',
  security,
  middleware: guard('all'),
  responses: {
    200: json(z.object({ data: z.object({ masterKeyId: z.string(), rewrapped: z.number() }) }).openapi('MasterKeyRotation'), 'Done'),
    ...errors,
  },
});

/** `/api/v1/secrets`: credentials for the steps of flows, encrypted per tenant. */
export function secretRoutes() {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
    .openapi(rotate, async (c) => {
      const services = c.get('services');
      const rewrapped = await transact(services, (tx) => services.keys.rewrapAll(tx));
      services.logger.info(
        { rewrapped, masterKeyId: services.keys.currentMasterKeyId },
        'data keys re-wrapped with the current master key',
      );
      return c.json({ data: { masterKeyId: services.keys.currentMasterKeyId, rewrapped } }, 200);
    })
    .openapi(list, async (c) => {
      const query = c.req.valid('query');
      const paging = page(query);
      const { secrets, total } = await listSecrets(c.get('services'), c.get('principal'), {
        type: query['filter[type]'],
        limit: paging.limit,
        offset: paging.offset,
      });
      return c.json({ data: secrets, meta: paging.meta(total) }, 200);
    })
    .openapi(create, async (c) => c.json({ data: await createSecret(c.get('services'), c.get('principal'), c.req.valid('json')) }, 201))
    .openapi(read, async (c) => c.json({ data: await readSecret(c.get('services'), c.get('principal'), c.req.valid('param').id) }, 200))
    .openapi(patch, async (c) =>
      c.json({ data: await updateSecret(c.get('services'), c.get('principal'), c.req.valid('param').id, c.req.valid('json')) }, 200),
    )
    .openapi(remove, async (c) => {
      await deleteSecret(c.get('services'), c.get('principal'), c.req.valid('param').id);
      return c.body(null, 204);
    })
    .openapi(addOwnerRoute, async (c) =>
      c.json({ data: await addOwner(c.get('services'), c.get('principal'), c.req.valid('param').id, c.req.valid('json').id) }, 200),
    )
    .openapi(removeOwnerRoute, async (c) => {
      const { id, ownerId } = c.req.valid('param');
      return c.json({ data: await removeOwner(c.get('services'), c.get('principal'), id, ownerId) }, 200);
    });
}
