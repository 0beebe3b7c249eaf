import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { componentCreateSchema, componentPatchSchema, componentSchema } from '../../protocol/component.js';
import { guard, type AppEnv } from '../http/auth.js';
import { validationHook } from '../http/errors.js';
import { bodyErrors, conflictError, errors, idParam, json, jsonBody, named, notFoundError, security } from '../http/openapi.js';
import { page, pageMetaSchema, pagingQuery } from '../http/paging.js';
import { createComponent, deleteComponent, getComponent, listComponents, updateComponent } from './service.js';

const component = named(componentSchema, 'Component');
const componentResponse = z.object({ data: component }).openapi('ComponentResponse');

const componentId = idParam('component');
const unknownComponent = notFoundError('component');
const nameTaken = conflictError('Your tenant has a component of that name already');

const list = createRoute({
  method: 'get',
  path: '/',
  tags: ['components'],
  summary: 'List the components you may use',
  description:
    'Public components of every tenant, the built-ins (`builtIn: true`, tenant null: webhook, http, jsonata, filter, debug) and your tenant’s private ones (with `all`, every one), by name.',
  security,
  middleware: guard('components.read'),
  request: {
    query: z.strictObject({
      ...pagingQuery,
      'filter[name]': z
        .string()
        .min(1)
        .max(200)
        .optional()
        .openapi({ description: 'Only components of exactly this name (how a flow node may name one)' }),
    }),
  },
  responses: {
    200: json(z.object({ data: z.array(component), meta: pageMetaSchema }).openapi('ComponentList'), 'A page of components'),
    ...errors,
  },
});

const create = createRoute({
  method: 'post',
  path: '/',
  tags: ['components'],
  summary: 'Register a component in your tenant',
  description: 'It needs an `image` (docker driver), a `module` (process driver) or both. Private unless `access` is public.',
  security,
  middleware: guard('components.write'),
  request: { body: jsonBody(named(componentCreateSchema, 'ComponentCreate')) },
  responses: { 201: json(componentResponse, 'The component as stored'), ...errors, ...nameTaken, ...bodyErrors },
});

const read = createRoute({
  method: 'get',
  path: '/{id}',
  tags: ['components'],
  summary: 'Read a component',
  security,
  middleware: guard('components.read'),
  request: { params: componentId },
  responses: { 200: json(componentResponse, 'The component'), ...errors, ...unknownComponent },
});

const patch = createRoute({
  method: 'patch',
  path: '/{id}',
  tags: ['components'],
  summary: 'Change a component of your tenant',
  description:
    'Merges the given fields (`functions` replaces the list whole) and checks the result. A public component of another tenant is a 403, and so is a built-in, for admins too.',
  security,
  middleware: guard('components.write'),
  request: { params: componentId, body: jsonBody(named(componentPatchSchema, 'ComponentPatch')) },
  responses: { 200: json(componentResponse, 'The component as stored'), ...errors, ...unknownComponent, ...nameTaken, ...bodyErrors },
});

const remove = createRoute({
  method: 'delete',
  path: '/{id}',
  tags: ['components'],
  summary: 'Delete a component of your tenant',
  description: 'A public component of another tenant is a 403, and so is a built-in, for admins too.',
  security,
  middleware: guard('components.write'),
  request: { params: componentId },
  responses: { 204: { description: 'Deleted' }, ...errors, ...unknownComponent },
});

/** `/components`: the component repository, OIH's model. */
export function componentRoutes() {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
    .openapi(list, async (c) => {
      const query = c.req.valid('query');
      const paging = page(query);
      const { components, total } = await listComponents(c.get('services').db, c.get('principal'), {
        name: query['filter[name]'],
        ...paging,
      });
      return c.json({ data: components, meta: paging.meta(total) }, 200);
    })
    .openapi(create, async (c) => c.json({ data: await createComponent(c.get('services'), c.get('principal'), c.req.valid('json')) }, 201))
    .openapi(read, async (c) =>
      c.json({ data: await getComponent(c.get('services').db, c.get('principal'), c.req.valid('param').id) }, 200),
    )
    .openapi(patch, async (c) =>
      c.json({ data: await updateComponent(c.get('services'), c.get('principal'), c.req.valid('param').id, c.req.valid('json')) }, 200),
    )
    .openapi(remove, async (c) => {
      await deleteComponent(c.get('services'), c.get('principal'), c.req.valid('param').id);
      return c.body(null, 204);
    });
}
