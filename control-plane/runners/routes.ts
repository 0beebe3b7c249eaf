import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { HEARTBEAT_SECONDS, heartbeatSchema, RUNNER_DRIVERS, runnerRegistrationSchema } from '../../protocol/runner.js';
import { guard, type AppEnv } from '../http/auth.js';
import { validationHook } from '../http/errors.js';
import { bodyErrors, errors, idParam, json, jsonBody, named, notFoundError, security } from '../http/openapi.js';
import { page, pageMetaSchema, pagingQuery } from '../http/paging.js';
import { deregisterRunner, getRunner, heartbeat, listRunners, registerRunner } from './service.js';

const worker = z.object({ flowId: z.string(), stepId: z.string(), state: z.enum(['starting', 'ready', 'failed']) });
const runner = z
  .object({
    id: z.string(),
    name: z.string(),
    host: z.string(),
    driver: z.enum(RUNNER_DRIVERS),
    capacity: z.number(),
    version: z.string().nullable(),
    tenant: z.string().nullable(),
    status: z.enum(['alive', 'lost']).openapi({ description: `lost: no heartbeat for ${3 * HEARTBEAT_SECONDS} s` }),
    lastSeenAt: z.string().openapi({ format: 'date-time' }),
    running: z.array(worker).openapi({ description: 'The step workers it reported at its last heartbeat' }),
    registeredAt: z.string().openapi({ format: 'date-time' }),
  })
  .openapi('Runner');
const runnerResponse = z.object({ data: runner }).openapi('RunnerResponse');
const runnerId = idParam('runner');
const unknownRunner = notFoundError('runner');

const register = createRoute({
  method: 'post',
  path: '/',
  tags: ['runners'],
  summary: 'A runner node registers (again, after a restart: same account and name, same runner)',
  security,
  middleware: guard('runners.write'),
  request: { body: jsonBody(named(runnerRegistrationSchema, 'RunnerRegistration')) },
  responses: { 201: json(runnerResponse, 'Registered'), 200: json(runnerResponse, 'Registered again'), ...errors, ...bodyErrors },
});

const beat = createRoute({
  method: 'post',
  path: '/{id}/heartbeat',
  tags: ['runners'],
  summary: `A runner is alive, and runs these step workers (every ${HEARTBEAT_SECONDS} s)`,
  security,
  middleware: guard('runners.write'),
  request: { params: runnerId, body: jsonBody(named(heartbeatSchema, 'Heartbeat')) },
  responses: { 200: json(z.object({ data: runner.extend({ heartbeatSeconds: z.number() }) }).openapi('HeartbeatAnswer'), 'Noted'), ...errors, ...unknownRunner, ...bodyErrors },
});

const list = createRoute({
  method: 'get',
  path: '/',
  tags: ['runners'],
  summary: 'The runner nodes of your tenant (with `all`: every one), alive or lost',
  security,
  middleware: guard('runners.read'),
  request: { query: z.strictObject(pagingQuery) },
  responses: { 200: json(z.object({ data: z.array(runner), meta: pageMetaSchema }).openapi('RunnerList'), 'A page of runners, by name'), ...errors },
});

const read = createRoute({
  method: 'get',
  path: '/{id}',
  tags: ['runners'],
  summary: 'Read a runner',
  security,
  middleware: guard('runners.read'),
  request: { params: runnerId },
  responses: { 200: json(runnerResponse, 'The runner'), ...errors, ...unknownRunner },
});

const remove = createRoute({
  method: 'delete',
  path: '/{id}',
  tags: ['runners'],
  summary: 'Forget a runner taken out of service',
  security,
  middleware: guard('runners.write'),
  request: { params: runnerId },
  responses: { 204: { description: 'Forgotten' }, ...errors, ...unknownRunner },
});

/** `/runners`: the runner fleet's registry. */
export function runnerRoutes() {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
    .openapi(register, async (c) => {
      const { runner: registered, created } = await registerRunner(c.get('services').db, c.get('principal'), c.req.valid('json'));
      return created ? c.json({ data: registered }, 201) : c.json({ data: registered }, 200);
    })
    .openapi(beat, async (c) => {
      const noted = await heartbeat(c.get('services').db, c.get('principal'), c.req.valid('param').id, c.req.valid('json'));
      return c.json({ data: { ...noted, heartbeatSeconds: HEARTBEAT_SECONDS } }, 200);
    })
    .openapi(list, async (c) => {
      const paging = page(c.req.valid('query'));
      const { runners, total } = await listRunners(c.get('services').db, c.get('principal'), paging);
      return c.json({ data: runners, meta: paging.meta(total) }, 200);
    })
    .openapi(read, async (c) => c.json({ data: await getRunner(c.get('services').db, c.get('principal'), c.req.valid('param').id) }, 200))
    .openapi(remove, async (c) => {
      await deregisterRunner(c.get('services').db, c.get('principal'), c.req.valid('param').id);
      return c.body(null, 204);
    });
}
