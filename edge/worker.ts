import { Hono } from 'hono';

/**
 * The edge Worker. Today it only reports that it is up; the webhook routes (/hook/{flowId}),
 * the per-flow Durable Object and the reconcile Cron Trigger arrive with the edge issue.
 */
const app = new Hono();

app.get('/healthcheck', (c) => c.json({ status: 'ok', service: 'edge' }));
app.notFound((c) => c.json({ errors: [{ message: `No route for ${c.req.method} ${c.req.path}`, code: 'not_found' }] }, 404));

export default app;
