import { Hono } from 'hono';
import { edgeTriggerSchema, triggerProblems } from '../protocol/edge.js';
import { peerTokenProblem } from '../protocol/peer-token.js';
import type { Env } from './env.js';
import { errorResponse } from './errors.js';
import { reconcile } from './reconcile.js';

const stub = (env: Env, flowId: string) => env.FLOW_TRIGGERS.get(env.FLOW_TRIGGERS.idFromName(flowId));

/** `/control/flows/{flowId}`: the control plane pushes, removes and inspects flow triggers. */
export const control = new Hono<{ Bindings: Env }>()
  .use('*', async (c, next) => {
    const problem = await peerTokenProblem(c.env.EDGE_CONTROL_SECRET, 'edge', c.req.header('authorization'));
    if (problem) return errorResponse(401, problem === 'missing' ? 'Missing bearer token' : 'Invalid or expired token', 'unauthorized');
    await next();
  })
  .put('/flows/:flowId', async (c) => {
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      return errorResponse(400, 'The body is not valid JSON', 'bad_request');
    }
    const problems = triggerProblems(body);
    if (problems) return errorResponse(400, problems, 'validation_error');
    const trigger = edgeTriggerSchema.parse(body);
    if (trigger.flowId !== c.req.param('flowId')) return errorResponse(400, 'flowId in the body differs from the path', 'validation_error');
    const applied = await stub(c.env, trigger.flowId).configure(trigger);
    return c.json({ data: { applied } }, 200);
  })
  .delete('/flows/:flowId', async (c) => {
    const version = Number(c.req.query('version'));
    if (!Number.isInteger(version) || version < 0) return errorResponse(400, 'version: a whole number is required', 'validation_error');
    const removed = await stub(c.env, c.req.param('flowId')).remove(version);
    return c.json({ data: { removed } }, 200);
  })
  .get('/flows/:flowId', async (c) => c.json({ data: await stub(c.env, c.req.param('flowId')).state() }, 200))
  // What the Cron Trigger runs every minute on Cloudflare, for a self-hosted workerd that has no cron of its own.
  .post('/reconcile', async (c) => {
    try {
      return c.json({ data: await reconcile(c.env) }, 200);
    } catch (error) {
      return errorResponse(503, `reconcile skipped: ${(error as Error).message}`, 'unavailable');
    }
  });
