import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { FLOW_STATUSES, FLOW_TYPES, flowCreateSchema, flowPatchSchema, flowSchema } from '../../protocol/flow.js';
import { guard, type AppEnv } from '../http/auth.js';
import { errorBody, validationHook } from '../http/errors.js';
import { bodyErrors, conflictError, errors, idParam, json, named, notFoundError, security } from '../http/openapi.js';
import { page, pageMetaSchema, pagingQuery, sortQuery } from '../http/paging.js';
import { mintStepToken, readStepLogs } from '../runners/service.js';
import { createFlow, deleteFlow, getFlow, InvalidFlowError, listFlows, startFlow, stopFlow, updateFlow } from './service.js';

const flow = named(flowSchema, 'Flow');
const flowBody = named(flowCreateSchema, 'FlowCreate');
const flowPatchBody = named(flowPatchSchema, 'FlowPatch');
const flowResponse = z.object({ data: flow }).openapi('FlowResponse');
const flowListResponse = z.object({ data: z.array(flow), meta: pageMetaSchema }).openapi('FlowList');
const flowStateResponse = z.object({ data: z.object({ id: z.string(), status: z.enum(FLOW_STATUSES) }) }).openapi('FlowState');

const flowId = idParam('flow');

const listQuery = z.strictObject({
  ...pagingQuery,
  'filter[status]': z.enum(FLOW_STATUSES).optional().openapi({ description: 'Only flows in this status' }),
  'filter[type]': z.enum(FLOW_TYPES).optional().openapi({ description: 'Only flows of this type' }),
  'filter[user]': z.uuid().optional().openapi({ description: 'Only flows this user owns, among those you may see' }),
  sort: sortQuery(['name', 'createdAt', 'updatedAt'], '-createdAt').openapi({
    description: 'name, createdAt or updatedAt; a leading - sorts descending (default -createdAt)',
  }),
  search: z.string().max(200).optional().openapi({ description: 'Case-insensitive text searched for in name and description' }),
});

const unknownFlow = notFoundError('flow');
const notInactive = conflictError('The flow is not inactive');

const list = createRoute({
  method: 'get',
  path: '/',
  tags: ['flows'],
  summary: 'List the flows you may see',
  description: "Your tenant's flows (holders of `all`: every tenant's), filtered, searched, sorted and paged.",
  security,
  middleware: guard('flows.read'),
  request: { query: listQuery },
  responses: { 200: json(flowListResponse, 'A page of flows'), ...errors },
});

const create = createRoute({
  method: 'post',
  path: '/',
  tags: ['flows'],
  summary: 'Create a flow',
  description:
    'The flow belongs to your tenant; you and your tenant are added to its owners. It starts inactive. Every `credentials_id` must name a secret you may read (you own it, or your tenant shares it).',
  security,
  middleware: guard('flows.write'),
  request: { body: { required: true, content: { 'application/json': { schema: flowBody } } } },
  responses: { 201: json(flowResponse, 'The flow as stored'), ...errors, ...bodyErrors },
});

const read = createRoute({
  method: 'get',
  path: '/{id}',
  tags: ['flows'],
  summary: 'Read a flow',
  security,
  middleware: guard('flows.read'),
  request: { params: flowId },
  responses: { 200: json(flowResponse, 'The flow'), ...errors, ...unknownFlow },
});

const patch = createRoute({
  method: 'patch',
  path: '/{id}',
  tags: ['flows'],
  summary: 'Change an inactive flow',
  description: 'Merges the given fields into the flow (a given graph replaces the stored one whole) and checks the result with every rule.',
  security,
  middleware: guard('flows.write'),
  request: { params: flowId, body: { required: true, content: { 'application/json': { schema: flowPatchBody } } } },
  responses: { 200: json(flowResponse, 'The flow as stored'), ...errors, ...unknownFlow, ...notInactive, ...bodyErrors },
});

const remove = createRoute({
  method: 'delete',
  path: '/{id}',
  tags: ['flows'],
  summary: 'Delete an inactive flow',
  security,
  middleware: guard('flows.write'),
  request: { params: flowId },
  responses: { 204: { description: 'Deleted' }, ...errors, ...unknownFlow, ...notInactive },
});

const start = createRoute({
  method: 'post',
  path: '/{id}/start',
  tags: ['flows'],
  summary: 'Start an inactive flow',
  description:
    'Sets `starting` and emits `flow.starting`; the flow becomes `active` once the runners report `flow.started`. Its steps read their secrets as you: a 403 when a node names a secret you may not read (you own it, or your tenant shares it).',
  security,
  middleware: guard('flows.control'),
  request: { params: flowId },
  responses: { 200: json(flowStateResponse, 'The flow is starting'), ...errors, ...unknownFlow, ...notInactive },
});

const stop = createRoute({
  method: 'post',
  path: '/{id}/stop',
  tags: ['flows'],
  summary: 'Stop a flow, whatever its state',
  description:
    'From `starting`, `active` or `stopping` (a flow stuck there can be stopped again): sets `stopping` and emits `flow.stopping`; the flow becomes `inactive` once the runners report `flow.stopped`. An `inactive` flow is left as it is: 200 with its status, no event.',
  security,
  middleware: guard('flows.control'),
  request: { params: flowId },
  responses: { 200: json(flowStateResponse, 'The flow is stopping, or was already inactive'), ...errors, ...unknownFlow },
});

const stepParams = flowId.extend({
  stepId: z
    .string()
    .min(1)
    .max(30)
    .openapi({ param: { name: 'stepId', in: 'path' } }),
});

const stepLogs = createRoute({
  method: 'get',
  path: '/{id}/steps/{stepId}/logs',
  tags: ['flows'],
  summary: 'What a step’s workers wrote, newest last',
  description:
    'The lines the step’s workers wrote to stdout and stderr, shipped by their runners and kept for STEP_LOG_RETENTION_DAYS. `page[size]` lines (default 100, at most 1000) up to the newest; `before` (a `seq` from an earlier answer) pages back in time.',
  security,
  middleware: guard('flows.read'),
  request: {
    params: stepParams,
    query: z.strictObject({
      'page[size]': z.coerce.number().int().min(1).max(1000).default(100).openapi({ description: 'Lines per answer' }),
      before: z.coerce.number().int().min(1).optional().openapi({ description: 'Only lines older than this seq' }),
    }),
  },
  responses: {
    200: json(
      z
        .object({
          data: z.array(
            z.object({
              seq: z.number(),
              at: z.string(),
              stream: z.enum(['stdout', 'stderr']),
              line: z.string(),
              runnerId: z.string().nullable(),
            }),
          ),
        })
        .openapi('StepLogs'),
      'The lines, oldest first',
    ),
    ...errors,
    ...notFoundError('flow'),
  },
});

const stepToken = createRoute({
  method: 'post',
  path: '/{id}/steps/{stepId}/token',
  tags: ['flows'],
  summary: 'Mint the token a deployed step works with',
  description:
    'For runners (runners.write): a token scoped to one step of a starting or active flow. It reads the credential the step names (`credentials_id`, GET /api/v1/secrets/{id}) and nothing else, and is revoked when the flow becomes inactive.',
  security,
  middleware: guard('runners.write'),
  request: { params: stepParams },
  responses: {
    201: json(
      z
        .object({
          data: z.object({
            id: z.string(),
            token: z.string(),
            flowId: z.string(),
            stepId: z.string(),
            credentialId: z.string().nullable(),
          }),
        })
        .openapi('StepToken'),
      'The token, shown once',
    ),
    ...errors,
    ...notFoundError('flow or step'),
    ...conflictError('The flow is not starting or active'),
  },
});

/** The flow repository: `/flows` CRUD and the start/stop lifecycle. */
export function flowRoutes() {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
    .openapi(list, async (c) => {
      const query = c.req.valid('query');
      const paging = page(query);
      const { flows, total } = await listFlows(c.get('services').db, c.get('principal'), {
        status: query['filter[status]'],
        type: query['filter[type]'],
        user: query['filter[user]'],
        search: query.search,
        sort: query.sort,
        limit: paging.limit,
        offset: paging.offset,
      });
      return c.json({ data: flows, meta: paging.meta(total) }, 200);
    })
    .openapi(create, async (c) => {
      const created = await createFlow(c.get('services'), c.get('principal'), c.req.valid('json'));
      return c.json({ data: created }, 201);
    })
    .openapi(read, async (c) => {
      return c.json({ data: await getFlow(c.get('services').db, c.get('principal'), c.req.valid('param').id) }, 200);
    })
    .openapi(patch, async (c) => {
      try {
        const updated = await updateFlow(c.get('services'), c.get('principal'), c.req.valid('param').id, c.req.valid('json'));
        return c.json({ data: updated }, 200);
      } catch (error) {
        if (!(error instanceof InvalidFlowError)) throw error;
        return c.json(errorBody(...error.problems.map((message) => ({ message, code: 'validation_error' }))), 400);
      }
    })
    .openapi(remove, async (c) => {
      await deleteFlow(c.get('services'), c.get('principal'), c.req.valid('param').id);
      return c.body(null, 204);
    })
    .openapi(start, async (c) => {
      return c.json({ data: await startFlow(c.get('services'), c.get('principal'), c.req.valid('param').id) }, 200);
    })
    .openapi(stop, async (c) => {
      return c.json({ data: await stopFlow(c.get('services'), c.get('principal'), c.req.valid('param').id) }, 200);
    })
    .openapi(stepLogs, async (c) => {
      const { id, stepId } = c.req.valid('param');
      const query = c.req.valid('query');
      await getFlow(c.get('services').db, c.get('principal'), id);
      const { lines } = await readStepLogs(c.get('services').db, id, stepId, { limit: query['page[size]'], before: query.before });
      return c.json({ data: lines }, 200);
    })
    .openapi(stepToken, async (c) => {
      const { id, stepId } = c.req.valid('param');
      return c.json({ data: await mintStepToken(c.get('services'), c.get('principal'), id, stepId) }, 201);
    });
}
