import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { guard, type AppEnv } from '../http/auth.js';
import { ApiError, errorSchema, validationHook } from '../http/errors.js';
import { bodyErrors, conflictError, errors, json, jsonBody, notFoundError, security } from '../http/openapi.js';
import { page, pageMetaSchema, pagingQuery } from '../http/paging.js';
import { ARCHIVE_TYPES, unpack } from './archive.js';
import { URI_PATTERN, URI_RULE } from './json-schema.js';
import { createSchema, deleteSchema, getSchema, importSchemas, listSchemas, updateSchema, validateDocument } from './schemas.service.js';

const jsonSchema = z
  .record(z.string(), z.unknown())
  .openapi({ description: 'A JSON Schema (draft-07); its patterns run on RE2, so without backreferences or lookarounds' });

const schema = z
  .object({
    id: z.string(),
    domainId: z.string(),
    uri: z.string().openapi({ description: 'Its path within the domain', example: 'crm/contact.json' }),
    name: z.string(),
    description: z.string().nullable(),
    value: jsonSchema.openapi({ description: 'The schema, its $id set to where the repository serves it' }),
    refs: z.array(z.string()).openapi({ description: 'The $ids of the schemas it references' }),
    tenant: z.string(),
    createdAt: z.string().openapi({ format: 'date-time' }),
    updatedAt: z.string().openapi({ format: 'date-time' }),
  })
  .openapi('Schema');
const schemaResponse = z.object({ data: schema }).openapi('SchemaResponse');

const uri = z.string().regex(URI_PATTERN, URI_RULE);
const fields = {
  name: z.string().trim().min(1).max(200).optional().openapi({ description: 'Defaults to the schema’s title, else its uri' }),
  description: z.string().max(2000).optional(),
  value: jsonSchema,
};

const domainParam = z.object({ id: z.uuid().openapi({ param: { name: 'id', in: 'path' }, description: 'The domain id' }) });
// `{uri{.+}}` lets hono match a uri across slashes; plainPaths() names it `{uri}` in the document.
const schemaParams = domainParam.extend({
  uri: uri.openapi({ param: { name: 'uri', in: 'path' }, description: 'The schema’s path, slashes and all', example: 'crm/contact.json' }),
});
const SCHEMA_PATH = '/{id}/schemas/{uri{.+}}';

const unknownSchema = { 404: json(errorSchema, 'No such domain that you may see, or no such schema in it') };

const list = createRoute({
  method: 'get',
  path: '/{id}/schemas',
  tags: ['metadata'],
  summary: 'List the schemas of a domain',
  security,
  middleware: guard(),
  request: { params: domainParam, query: z.strictObject(pagingQuery) },
  responses: {
    200: json(z.object({ data: z.array(schema), meta: pageMetaSchema }).openapi('SchemaList'), 'A page of schemas, by uri'),
    ...errors,
    ...notFoundError('domain'),
  },
});

const create = createRoute({
  method: 'post',
  path: '/{id}/schemas',
  tags: ['metadata'],
  summary: 'Add a schema to a domain',
  description:
    'Its uri is `uri`, else the path of its own `$id`. Its `$id` becomes `<PUBLIC_URL>/api/v1/domains/{id}/schemas/{uri}`; ' +
    'relative `$ref`s resolve against it and must name schemas of the domain. Patterns run on RE2 (linear time): one with a backreference or a lookaround is a 400 naming it.',
  security,
  middleware: guard('metadata.domains.crud'),
  request: { params: domainParam, body: jsonBody(z.strictObject({ uri: uri.optional(), ...fields }).openapi('SchemaCreate')) },
  responses: {
    201: json(schemaResponse, 'The schema as stored'),
    ...errors,
    ...notFoundError('domain'),
    ...conflictError('The domain has a schema of that uri'),
    ...bodyErrors,
  },
});

const archiveBody = z.string().openapi({ format: 'binary' });
const importArchive = createRoute({
  method: 'post',
  path: '/{id}/schemas/import',
  tags: ['metadata'],
  summary: 'Import a zip, tar or tar.gz of JSON Schemas in one transaction',
  description:
    'Each `*.json` file’s path in the archive is its uri; a schema of the same uri is replaced. A bad archive or one bad file changes nothing.',
  security,
  middleware: guard('metadata.domains.crud'),
  request: {
    params: domainParam,
    body: { required: true, content: Object.fromEntries(Object.keys(ARCHIVE_TYPES).map((type) => [type, { schema: archiveBody }])) },
  },
  responses: {
    200: json(z.object({ data: z.array(schema) }).openapi('SchemaImport'), 'The imported schemas, by uri'),
    ...errors,
    ...notFoundError('domain'),
    ...bodyErrors,
  },
});

const validation = z
  .object({
    valid: z.boolean(),
    errors: z
      .array(
        z.object({
          path: z
            .string()
            .openapi({ description: 'JSON pointer to the offending value; empty for the document itself', example: '/address/zip' }),
          message: z.string(),
          keyword: z.string(),
        }),
      )
      .optional(),
  })
  .openapi('Validation');

const validate = createRoute({
  method: 'post',
  path: `${SCHEMA_PATH}/validate`,
  tags: ['metadata'],
  summary: 'Validate a document against a schema',
  description: 'An invalid document is still a 200: `valid` is false and `errors` lists every error with its path.',
  security,
  middleware: guard(),
  request: { params: schemaParams, body: jsonBody(z.unknown().openapi({ description: 'The document' })) },
  responses: { 200: json(z.object({ data: validation }), 'The verdict'), ...errors, ...unknownSchema, ...bodyErrors },
});

const read = createRoute({
  method: 'get',
  path: SCHEMA_PATH,
  tags: ['metadata'],
  summary: 'Read a schema',
  description: 'With `Accept: application/schema+json`, the JSON Schema alone.',
  security,
  middleware: guard(),
  request: { params: schemaParams },
  responses: {
    200: {
      description: 'The schema',
      content: { 'application/json': { schema: schemaResponse }, 'application/schema+json': { schema: jsonSchema } },
    },
    ...errors,
    ...unknownSchema,
  },
});

const update = createRoute({
  method: 'put',
  path: SCHEMA_PATH,
  tags: ['metadata'],
  summary: 'Replace a schema',
  description: 'Its uri and `$id` stay as they are.',
  security,
  middleware: guard('metadata.domains.crud'),
  request: { params: schemaParams, body: jsonBody(z.strictObject(fields).openapi('SchemaUpdate')) },
  responses: { 200: json(schemaResponse, 'The schema as stored'), ...errors, ...unknownSchema, ...bodyErrors },
});

const remove = createRoute({
  method: 'delete',
  path: SCHEMA_PATH,
  tags: ['metadata'],
  summary: 'Delete a schema',
  security,
  middleware: guard('metadata.domains.crud'),
  request: { params: schemaParams },
  responses: { 204: { description: 'Deleted' }, ...errors, ...unknownSchema, ...conflictError('Other schemas of the domain reference it') },
});

/** Where schemas are served from: PUBLIC_URL, or the origin the request came to. */
const baseOf = (c: Context<AppEnv>) => c.get('services').config.PUBLIC_URL ?? new URL(c.req.url).origin;

function archiveType(c: Context<AppEnv>) {
  const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (!Object.hasOwn(ARCHIVE_TYPES, type)) {
    throw new ApiError(
      415,
      `Send the archive as one of ${Object.keys(ARCHIVE_TYPES).join(', ')} (got ${type || 'no Content-Type'})`,
      'unsupported_media_type',
    );
  }
  return ARCHIVE_TYPES[type as keyof typeof ARCHIVE_TYPES];
}

/** The document names `{uri{.+}}` plainly `{uri}`: hono has routed by it already. */
function plainPaths<A extends OpenAPIHono<AppEnv>>(app: A): A {
  for (const definition of app.openAPIRegistry.definitions) {
    if (definition.type === 'route') definition.route.path = definition.route.path.replace('{uri{.+}}', '{uri}');
  }
  return app;
}

/** `/api/v1/domains/{id}/schemas...` */
export function schemaRoutes() {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
    .openapi(list, async (c) => {
      const paging = page(c.req.valid('query'));
      const { schemas, total } = await listSchemas(c.get('services').db, c.get('principal'), c.req.valid('param').id, paging);
      return c.json({ data: schemas, meta: paging.meta(total) }, 200);
    })
    .openapi(create, async (c) =>
      c.json(
        { data: await createSchema(c.get('services'), c.get('principal'), baseOf(c), c.req.valid('param').id, c.req.valid('json')) },
        201,
      ),
    )
    .openapi(importArchive, async (c) => {
      const files = await unpack(new Uint8Array(await c.req.arrayBuffer()), archiveType(c));
      return c.json({ data: await importSchemas(c.get('services'), c.get('principal'), baseOf(c), c.req.valid('param').id, files) }, 200);
    })
    .openapi(validate, async (c) => {
      const { id, uri } = c.req.valid('param');
      return c.json(
        { data: await validateDocument(c.get('services').db, c.get('principal'), baseOf(c), id, uri, c.req.valid('json')) },
        200,
      );
    })
    .openapi(read, async (c) => {
      const { id, uri } = c.req.valid('param');
      const found = await getSchema(c.get('services').db, c.get('principal'), id, uri);
      if (c.req.header('accept')?.includes('application/schema+json'))
        return c.json(found.value, 200, { 'Content-Type': 'application/schema+json' });
      return c.json({ data: found }, 200);
    })
    .openapi(update, async (c) => {
      const { id, uri } = c.req.valid('param');
      return c.json({ data: await updateSchema(c.get('services'), c.get('principal'), baseOf(c), id, uri, c.req.valid('json')) }, 200);
    })
    .openapi(remove, async (c) => {
      const { id, uri } = c.req.valid('param');
      await deleteSchema(c.get('services'), c.get('principal'), id, uri);
      return c.body(null, 204);
    });
  return plainPaths(app);
}
