import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { AppEnv } from '../http/auth.js';
import { DELIVERY_LIMITS } from '../../protocol/edge.js';
import { peerTokenProblem } from '../../protocol/peer-token.js';
import { ApiError, errorSchema, unauthorized, validationHook } from '../http/errors.js';
import { bodyErrors, json, jsonBody } from '../http/openapi.js';
import { desiredTriggers, ingestExecutions } from './service.js';

const answer = z
  .object({
    data: z.object({
      accepted: z.array(z.string()),
      duplicates: z.array(z.string()),
      rejected: z.array(z.object({ flowExecId: z.string(), reason: z.string() })),
    }),
  })
  .openapi('EdgeIngestAnswer');

export const EDGE_INGEST_PATH = '/api/v1/edge/executions';

const ingest = createRoute({
  method: 'post',
  path: '/executions',
  tags: ['edge'],
  summary: 'Executions from the edge Worker (webhook calls and schedule slots)',
  description:
    'For the edge only: a token signed with EDGE_CONTROL_SECRET. Each new flowExecId is published as flow.executed; one seen before is a duplicate and changes nothing, so the edge may send a batch again. One that can never run (malformed, or no such flow in its tenant) is rejected and recorded as a failed execution with the reason. Up to 100 executions and 4 MiB, whatever BODY_LIMIT_BYTES says (protocol/edge.ts).',
  request: {
    body: jsonBody(z.strictObject({ executions: z.array(z.unknown()).min(1).max(DELIVERY_LIMITS.executions) }).openapi('EdgeIngest')),
  },
  responses: {
    200: json(answer, 'What became of each execution'),
    400: json(errorSchema, 'Not a batch of 1 to 100 executions'),
    401: json(errorSchema, 'Not signed by the edge'),
    503: json(errorSchema, 'EDGE_CONTROL_SECRET is not set'),
    ...bodyErrors,
  },
});

const triggers = createRoute({
  method: 'get',
  path: '/triggers',
  tags: ['edge'],
  summary: 'The flow triggers the edge should hold now (its reconcile)',
  description:
    'For the edge only. Every starting or active flow, versioned by its last change; `asOf` versions the removal of any other trigger.',
  responses: {
    200: json(
      z.object({ data: z.object({ asOf: z.number(), triggers: z.array(z.record(z.string(), z.unknown())) }) }).openapi('EdgeTriggers'),
      'The triggers',
    ),
    401: json(errorSchema, 'Not signed by the edge'),
    503: json(errorSchema, 'EDGE_CONTROL_SECRET is not set'),
  },
});

/** `/api/v1/edge`: what the edge Worker calls. */
export function edgeRoutes() {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  // Authenticated before the body is parsed: an unsigned caller learns nothing about the format.
  app.use('*', async (c, next) => {
    const secret = c.get('services').config.EDGE_CONTROL_SECRET;
    if (!secret) throw new ApiError(503, 'The edge bridge is off: set EDGE_CONTROL_SECRET', 'edge_not_configured');
    const problem = await peerTokenProblem(secret, 'control-plane', c.req.header('authorization'));
    if (problem) throw unauthorized(problem === 'missing' ? 'Missing bearer token from the edge' : 'Invalid or expired edge token');
    await next();
  });
  return app
    .openapi(ingest, async (c) => c.json({ data: await ingestExecutions(c.get('services'), c.req.valid('json').executions) }, 200))
    .openapi(triggers, async (c) => c.json({ data: await desiredTriggers(c.get('services')) }, 200));
}
