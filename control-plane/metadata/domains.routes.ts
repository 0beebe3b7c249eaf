import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { ownerSchema } from '../../protocol/flow.js';
import { guard, type AppEnv } from '../http/auth.js';
import { validationHook } from '../http/errors.js';
import { bodyErrors, errors, idParam, json, jsonBody, notFoundError, security } from '../http/openapi.js';
import { page, pageMetaSchema, pagingQuery } from '../http/paging.js';
import { createDomain, deleteDomain, getDomain, listDomains, updateDomain } from './domains.service.js';

const domain = z
  .object({
    id: z.string(),
    name: z.string(),
    description: z.string().nullable(),
    public: z.boolean().openapi({ description: 'Readable by everyone authenticated, not only its tenant' }),
    owners: z.array(z.object({ id: z.string(), type: z.enum(['user', 'tenant']) })),
    tenant: z.string(),
    createdAt: z.string().openapi({ format: 'date-time' }),
    updatedAt: z.string().openapi({ format: 'date-time' }),
  })
  .openapi('Domain');
const domainResponse = z.object({ data: domain }).openapi('DomainResponse');

const fields = {
  name: z.string().trim().min(1).max(200).openapi({ example: 'Addresses' }),
  description: z.string().max(2000).nullable().optional(),
  public: z.boolean().optional().openapi({ description: 'Default false' }),
  owners: z.array(ownerSchema).max(100).optional().openapi({ description: 'Besides you and your tenant, which are always added' }),
};

const domainId = idParam('domain');
const unknownDomain = notFoundError('domain');

const list = createRoute({
  method: 'get',
  path: '/',
  tags: ['metadata'],
  summary: 'List the domains you may read',
  description: 'Public domains, and your tenant’s; with `all`, every one.',
  security,
  middleware: guard(),
  request: { query: z.strictObject(pagingQuery) },
  responses: {
    200: json(z.object({ data: z.array(domain), meta: pageMetaSchema }).openapi('DomainList'), 'A page of domains, by name'),
    ...errors,
  },
});

const create = createRoute({
  method: 'post',
  path: '/',
  tags: ['metadata'],
  summary: 'Create a domain in your tenant',
  security,
  middleware: guard('metadata.domains.crud'),
  request: { body: jsonBody(z.strictObject(fields).openapi('DomainCreate')) },
  responses: { 201: json(domainResponse, 'The domain'), ...errors, ...bodyErrors },
});

const read = createRoute({
  method: 'get',
  path: '/{id}',
  tags: ['metadata'],
  summary: 'Read a domain',
  security,
  middleware: guard(),
  request: { params: domainId },
  responses: { 200: json(domainResponse, 'The domain'), ...errors, ...unknownDomain },
});

const update = createRoute({
  method: 'put',
  path: '/{id}',
  tags: ['metadata'],
  summary: 'Change a domain of your tenant',
  description: 'Changes the fields given, as OIH does. A public domain of another tenant is a 403.',
  security,
  middleware: guard('metadata.domains.crud'),
  request: { params: domainId, body: jsonBody(z.strictObject({ ...fields, name: fields.name.optional() }).openapi('DomainUpdate')) },
  responses: { 200: json(domainResponse, 'The domain as stored'), ...errors, ...unknownDomain, ...bodyErrors },
});

const remove = createRoute({
  method: 'delete',
  path: '/{id}',
  tags: ['metadata'],
  summary: 'Delete a domain of your tenant, with its schemas',
  security,
  middleware: guard('metadata.domains.crud'),
  request: { params: domainId },
  responses: { 204: { description: 'Deleted' }, ...errors, ...unknownDomain },
});

/** `/api/v1/domains` itself. */
export function domainCrudRoutes() {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
    .openapi(list, async (c) => {
      const paging = page(c.req.valid('query'));
      const { domains, total } = await listDomains(c.get('services').db, c.get('principal'), paging);
      return c.json({ data: domains, meta: paging.meta(total) }, 200);
    })
    .openapi(create, async (c) => c.json({ data: await createDomain(c.get('services'), c.get('principal'), c.req.valid('json')) }, 201))
    .openapi(read, async (c) => c.json({ data: await getDomain(c.get('services').db, c.get('principal'), c.req.valid('param').id) }, 200))
    .openapi(update, async (c) =>
      c.json({ data: await updateDomain(c.get('services'), c.get('principal'), c.req.valid('param').id, c.req.valid('json')) }, 200),
    )
    .openapi(remove, async (c) => {
      await deleteDomain(c.get('services'), c.get('principal'), c.req.valid('param').id);
      return c.body(null, 204);
    });
}
