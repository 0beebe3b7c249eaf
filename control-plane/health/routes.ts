import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { count } from 'drizzle-orm';
import { outbox } from '../bus/schema.js';
import type { AppEnv } from '../http/auth.js';

const healthSchema = z
  .object({
    status: z.enum(['ok', 'degraded']),
    database: z.object({ driver: z.string(), ok: z.boolean(), error: z.string().optional() }),
    bus: z.object({ kind: z.string(), connected: z.boolean() }),
    outbox: z.object({ pending: z.number().nullable() }),
  })
  .openapi('Health');

const route = createRoute({
  method: 'get',
  path: '/healthcheck',
  tags: ['health'],
  summary: 'Database and event bus state',
  responses: {
    200: { description: 'Everything answers', content: { 'application/json': { schema: healthSchema } } },
    503: { description: 'The database or the bus does not answer', content: { 'application/json': { schema: healthSchema } } },
  },
});

export function healthRoutes() {
  return new OpenAPIHono<AppEnv>().openapi(route, async (c) => {
    const { database, bus, db } = c.get('services');
    let databaseState: { driver: string; ok: boolean; error?: string } = { driver: database.driver, ok: true };
    let pending: number | null = null;
    try {
      await database.ping();
      const [row] = await db.select({ pending: count() }).from(outbox);
      pending = row?.pending ?? 0;
    } catch (error) {
      databaseState = { driver: database.driver, ok: false, error: (error as Error).message };
    }
    const busState = bus.health();
    const ok = databaseState.ok && busState.connected;
    return c.json({ status: ok ? 'ok' : 'degraded', database: databaseState, bus: busState, outbox: { pending } } as const, ok ? 200 : 503);
  });
}
