import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { DEPLOYMENT_STATES, desiredStateSchema, stepLogLineSchema, WORKER_STATES } from '../../protocol/fleet.js';
import { heartbeatSchema, RUNNER_DRIVERS, runnerRegistrationSchema, trustedModulesSchema } from '../../protocol/runner.js';
import { guard, type AppEnv } from '../http/auth.js';
import { validationHook } from '../http/errors.js';
import { bodyErrors, errors, idParam, json, jsonBody, named, notFoundError, security } from '../http/openapi.js';
import { page, pageMetaSchema, pagingQuery } from '../http/paging.js';
import { deregisterRunner, getRunner, heartbeat, listRunners, registerRunner, storeStepLogs, waitForDesiredState } from './service.js';

const deployment = z.object({
  flowId: z.string(),
  generation: z.number(),
  state: z.enum(DEPLOYMENT_STATES),
  reason: z.string().optional(),
  steps: z.array(z.object({ stepId: z.string(), state: z.enum(WORKER_STATES), restarts: z.number(), reason: z.string().optional() })),
});
const runner = z
  .object({
    id: z.string(),
    name: z.string(),
    host: z.string(),
    driver: z.enum(RUNNER_DRIVERS),
    capacity: z.number(),
    workers: z.number().openapi({ description: 'Step workers of the flows placed on it' }),
    version: z.string().nullable(),
    /** What its process driver runs besides the built-ins (its RUNNER_TRUSTED_MODULES): these packages, and relative paths when it lists folders. */
    trustedModules: named(trustedModulesSchema, 'TrustedModules'),
    tenant: z.string().nullable().openapi({ description: 'Null: a platform-wide runner, which runs every tenant’s flows' }),
    status: z.enum(['alive', 'lost']).openapi({ description: 'lost: no heartbeat for three intervals (RUNNER_HEARTBEAT_SECONDS)' }),
    lastSeenAt: z.string().openapi({ format: 'date-time' }),
    deployments: z.array(deployment).openapi({ description: 'Its deployments as it reported them at its last heartbeat' }),
    registeredAt: z.string().openapi({ format: 'date-time' }),
  })
  .openapi('Runner');
const runnerAnswer = z
  .object({ data: runner.extend({ heartbeatSeconds: z.number().openapi({ description: 'How often to send a heartbeat' }) }) })
  .openapi('RunnerAnswer');
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
  responses: { 201: json(runnerAnswer, 'Registered'), 200: json(runnerAnswer, 'Registered again'), ...errors, ...bodyErrors },
});

const beat = createRoute({
  method: 'post',
  path: '/{id}/heartbeat',
  tags: ['runners'],
  summary: 'A runner is alive, and its deployments are in these states',
  description:
    'Sent at every change and every `heartbeatSeconds`. All steps of a deployment ready: `flow.started`; failed while deploying: `flow.failed`; removed: `flow.stopped`.',
  security,
  middleware: guard('runners.write'),
  request: { params: runnerId, body: jsonBody(named(heartbeatSchema, 'Heartbeat')) },
  responses: { 200: json(runnerAnswer, 'Noted'), ...errors, ...unknownRunner, ...bodyErrors },
});

const desired = createRoute({
  method: 'get',
  path: '/{id}/deployments',
  tags: ['runners'],
  summary: 'What the runner should run (long poll)',
  description:
    'The flows placed on the runner, each to run or to remove, and the version of that state. Answers at once when the version is past `after`; else when it changes, or after `wait` seconds. Only the runner’s own account may ask.',
  security,
  middleware: guard('runners.write'),
  request: {
    params: runnerId,
    query: z.strictObject({
      after: z.coerce.number().int().min(-1).default(-1).openapi({ description: 'The version the runner has' }),
      wait: z.coerce.number().int().min(0).max(60).default(0).openapi({ description: 'Seconds to wait for a newer version' }),
    }),
  },
  responses: {
    200: json(z.object({ data: named(desiredStateSchema, 'DesiredState') }).openapi('DesiredStateResponse'), 'The desired state'),
    ...errors,
    ...unknownRunner,
  },
});

const logs = createRoute({
  method: 'post',
  path: '/{id}/logs',
  tags: ['runners'],
  summary: 'Lines step workers wrote, shipped by their runner',
  description:
    'Lines of flows placed on this runner are kept (GET /flows/{id}/steps/{stepId}/logs reads them); others are dropped and counted.',
  security,
  middleware: guard('runners.write'),
  request: { params: runnerId, body: jsonBody(named(z.strictObject({ lines: z.array(stepLogLineSchema).max(1000) }), 'StepLogBatch')) },
  responses: {
    202: json(z.object({ data: z.object({ stored: z.number(), dropped: z.number() }) }).openapi('StepLogsStored'), 'Stored'),
    ...errors,
    ...unknownRunner,
    ...bodyErrors,
  },
});

const list = createRoute({
  method: 'get',
  path: '/',
  tags: ['runners'],
  summary: 'The runner nodes of your tenant (with `all`: every one), alive or lost',
  security,
  middleware: guard('runners.read'),
  request: { query: z.strictObject(pagingQuery) },
  responses: {
    200: json(z.object({ data: z.array(runner), meta: pageMetaSchema }).openapi('RunnerList'), 'A page of runners, by name'),
    ...errors,
  },
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
  summary: 'Forget a runner taken out of service (its flows move to the others)',
  security,
  middleware: guard('runners.write'),
  request: { params: runnerId },
  responses: { 204: { description: 'Forgotten' }, ...errors, ...unknownRunner },
});

/** `/runners`: the runner fleet's registry, and what each runner is to run. */
export function runnerRoutes() {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
    .openapi(register, async (c) => {
      const services = c.get('services');
      const { runner: registered, created } = await registerRunner(services, c.get('principal'), c.req.valid('json'));
      const data = { ...registered, heartbeatSeconds: services.config.RUNNER_HEARTBEAT_SECONDS };
      return created ? c.json({ data }, 201) : c.json({ data }, 200);
    })
    .openapi(beat, async (c) => {
      const services = c.get('services');
      const noted = await heartbeat(services, c.get('principal'), c.req.valid('param').id, c.req.valid('json'));
      return c.json({ data: { ...noted, heartbeatSeconds: services.config.RUNNER_HEARTBEAT_SECONDS } }, 200);
    })
    .openapi(desired, async (c) => {
      const { after, wait } = c.req.valid('query');
      const state = await waitForDesiredState(
        c.get('services'),
        c.get('principal'),
        c.req.valid('param').id,
        after,
        wait,
        c.req.raw.signal,
      );
      return c.json({ data: state }, 200);
    })
    .openapi(logs, async (c) => {
      const stored = await storeStepLogs(c.get('services'), c.get('principal'), c.req.valid('param').id, c.req.valid('json').lines);
      return c.json({ data: stored }, 202);
    })
    .openapi(list, async (c) => {
      const paging = page(c.req.valid('query'));
      const { runners, total } = await listRunners(c.get('services'), c.get('principal'), paging);
      return c.json({ data: runners, meta: paging.meta(total) }, 200);
    })
    .openapi(read, async (c) => c.json({ data: await getRunner(c.get('services'), c.get('principal'), c.req.valid('param').id) }, 200))
    .openapi(remove, async (c) => {
      await deregisterRunner(c.get('services'), c.get('principal'), c.req.valid('param').id);
      return c.body(null, 204);
    });
}
