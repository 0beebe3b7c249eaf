import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import pg from 'pg';

/**
 * The baseline: hono on Node doing the same single-row query as GET /flows/{id} (and the same
 * insert as POST /flows), with no auth, no validation, no events and no logging.
 */
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 });
const tenantId = process.env.BENCH_TENANT_ID!;
const app = new Hono();

app.get('/flows/:id', async (c) => {
  const { rows } = await pool.query('select * from flows where id = $1', [c.req.param('id')]);
  return rows[0] ? c.json({ data: rows[0] }) : c.json({ errors: [{ message: 'not found' }] }, 404);
});

app.post('/flows', async (c) => {
  const body = await c.req.json();
  const { rows } = await pool.query('insert into flows (tenant_id, name, owners, graph) values ($1, $2, $3, $4) returning *', [
    tenantId,
    body.name,
    JSON.stringify([]),
    JSON.stringify(body.graph),
  ]);
  return c.json({ data: rows[0] }, 201);
});

serve({ fetch: app.fetch, hostname: '127.0.0.1', port: Number(process.env.PORT) });
