import { Hono } from 'hono';

/** The baseline for bench/edge-ingest.ts: a hono Worker that answers 202 and does nothing else. */
const app = new Hono();
app.post('/hook/:flowId', (c) => c.json({ data: { requestId: 'bare', flowExecId: 'bare' } }, 202));
export default app;
