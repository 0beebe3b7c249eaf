import { Hono, type Context } from 'hono';
import { control } from './control.js';
import { bodyLimit, type Env } from './env.js';
import { errorResponse, notLive } from './errors.js';
import { admitHookRequest, Rejection } from './hook-request.js';
import { reconcile } from './reconcile.js';

export { FlowRegistry } from './registry.js';
export { FlowTrigger } from './trigger.js';

/**
 * The edge Worker: webhook URLs, each handled by its flow's Durable Object, and the control API the
 * control plane pushes flow triggers through.
 */
/** How much of an early-answered body the Worker reads and drops, and for how long, before it cancels the rest. */
const DRAIN = { bytes: 64 * 1024 * 1024, ms: 5000 };

const app = new Hono<{ Bindings: Env }>();

app.get('/healthcheck', (c) => c.json({ status: 'ok', service: 'edge' }));

/**
 * Reads and drops what is left of a body the Worker answered early, within bounds, then cancels the
 * rest. Reading it matters under wrangler dev, whose proxy fails the next requests (503) when an
 * answer leaves a body unread; workerd cannot read a request after its answer left, so this comes
 * first. A body over DRAIN.bytes, or one still arriving after DRAIN.ms, is cancelled.
 */
async function drain(body: ReadableStream<Uint8Array>): Promise<void> {
  if (body.locked) return;
  const reader = body.getReader();
  let read = 0;
  let timer = 0;
  const timeUp = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), DRAIN.ms)));
  try {
    while (read <= DRAIN.bytes) {
      const next = await Promise.race([reader.read(), timeUp]);
      if (next === 'late') break;
      if (next.done) return;
      read += next.value.byteLength;
    }
    await reader.cancel();
  } catch {
    // The caller went away: nothing is left to read.
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Every flow id goes to a Durable Object, known or not, so an unknown flow answers like a stopped
 * one. What does not depend on the flow (method, content type, size) is checked first, here.
 */
const hook = async (c: Context<{ Bindings: Env }>) => {
  const request = c.req.raw;
  try {
    const flowId = c.req.param('flowId') ?? '';
    if (flowId.length > 64) return notLive();
    const body = await admitHookRequest(request, bodyLimit(c.env));
    const trigger = c.env.FLOW_TRIGGERS.get(c.env.FLOW_TRIGGERS.idFromName(flowId));
    return await trigger.fetch(request.url, {
      method: request.method,
      headers: request.headers,
      body: request.method === 'POST' ? body : undefined,
    });
  } catch (error) {
    if (error instanceof Rejection) return error.response;
    throw error;
  } finally {
    // Answered before the body was read whole (404, 405, 413, 415): the rest is read and dropped
    // first (a body read whole has nothing left), or it is read after the answer and fails the next request.
    if (request.body) await drain(request.body);
  }
};
app.all('/hook/:flowId', hook);
app.all('/hook/:flowId/*', hook);

app.route('/control', control);
app.notFound((c) => errorResponse(404, `No route for ${c.req.method} ${c.req.path}`, 'not_found'));

export default {
  fetch: app.fetch,
  /** The Cron Trigger (wrangler.toml): reconcile with the control plane every minute. */
  async scheduled(_controller: ScheduledController, env: Env): Promise<void> {
    try {
      const { pushed, removed } = await reconcile(env);
      if (pushed + removed > 0) console.log(`reconcile: ${pushed} triggers pushed, ${removed} removed`);
    } catch (error) {
      // The control plane is unreachable or answers badly: the triggers stay as they are until the next minute's try.
      console.warn(`reconcile skipped, trying again at the next Cron Trigger: ${(error as Error).message}`);
    }
  },
} satisfies ExportedHandler<Env>;
