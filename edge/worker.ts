import { Hono, type Context } from 'hono';
import { control } from './control.js';
import type { Env } from './env.js';
import { errorResponse, notLive } from './errors.js';
import { reconcile } from './reconcile.js';

export { FlowRegistry } from './registry.js';
export { FlowTrigger } from './trigger.js';

/**
 * The edge Worker: webhook URLs, each handled by its flow's Durable Object, and the control API the
 * control plane pushes flow triggers through.
 */
const app = new Hono<{ Bindings: Env }>();

app.get('/healthcheck', (c) => c.json({ status: 'ok', service: 'edge' }));

// Every flow id goes to a Durable Object, known or not, so an unknown flow answers like a stopped one.
const hook = (c: Context<{ Bindings: Env }>) => {
  const flowId = c.req.param('flowId') ?? '';
  if (flowId.length > 64) return notLive();
  return c.env.FLOW_TRIGGERS.get(c.env.FLOW_TRIGGERS.idFromName(flowId)).fetch(c.req.raw);
};
app.all('/hook/:flowId', hook);
app.all('/hook/:flowId/*', hook);

app.route('/control', control);
app.notFound((c) => errorResponse(404, `No route for ${c.req.method} ${c.req.path}`, 'not_found'));

export default {
  fetch: app.fetch,
  /** The Cron Trigger (wrangler.toml): reconcile with the control plane every minute. */
  async scheduled(_controller: ScheduledController, env: Env): Promise<void> {
    const { pushed, removed } = await reconcile(env);
    if (pushed + removed > 0) console.log(`reconcile: ${pushed} triggers pushed, ${removed} removed`);
  },
} satisfies ExportedHandler<Env>;
