import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { pino } from 'pino';
import { openDatabase, type DatabaseHandle } from '../../control-plane/db/index.js';
import { tenants } from '../../control-plane/iam/schema.js';
import { startNeonProxy } from '../support/neon-proxy.js';
import { createTestDatabase, postgresAdminUrl, postgresAvailable } from '../support/postgres.js';

const logger = pino({ level: 'silent' });

const hasPostgres = await postgresAvailable();

/** The same checks for every driver: migrations apply, rows round-trip, transactions roll back, rows can be claimed. */
function driverContract(
  open: () => Promise<{ handle: DatabaseHandle; cleanup(): Promise<void> }>,
  more?: (handle: () => DatabaseHandle) => void,
) {
  let handle: DatabaseHandle;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ handle, cleanup } = await open());
    await handle.migrate();
  });
  afterAll(async () => {
    await handle.close();
    await cleanup();
  });

  it('applies the migrations once (a second run changes nothing)', async () => {
    await handle.migrate();
    const result = await handle.db.execute(
      sql`select count(*)::int as n from information_schema.tables where table_name in ('flows', 'users', 'outbox', 'audit_records')`,
    );
    expect((result as unknown as { rows: { n: number }[] }).rows[0]!.n).toBe(4);
  });

  it('writes and reads a row', async () => {
    const [created] = await handle.db
      .insert(tenants)
      .values({ name: `t-${handle.driver}` })
      .returning();
    const [read] = await handle.db.select().from(tenants).where(eq(tenants.id, created!.id));
    expect(read).toMatchObject({ name: `t-${handle.driver}`, status: 'active' });
    expect(read!.createdAt).toBeInstanceOf(Date);
  });

  it('rolls a failed transaction back', async () => {
    await expect(
      handle.db.transaction(async (tx) => {
        await tx.insert(tenants).values({ name: 'rolled-back' });
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    expect(await handle.db.select().from(tenants).where(eq(tenants.name, 'rolled-back'))).toEqual([]);
  });

  it('claims rows with FOR UPDATE SKIP LOCKED', async () => {
    const rows = await handle.db.transaction((tx) => tx.select().from(tenants).limit(5).for('update', { skipLocked: true }));
    expect(rows.length).toBeGreaterThan(0);
  });

  it('answers ping', async () => {
    await expect(handle.ping()).resolves.toBeUndefined();
  });

  more?.(() => handle);
}

/** For the server drivers: a connection the server drops while a transaction holds it fails that transaction, not the process. */
function survivesDroppedConnections(handle: () => DatabaseHandle) {
  it('survives a connection the server terminates while it is in use, and goes on', async () => {
    const failed = handle().db.transaction(async (tx) => {
      const result = await tx.execute(sql`select pg_backend_pid() as pid`);
      const pid = (result as unknown as { rows: { pid: number }[] }).rows[0]!.pid;
      const admin = new pg.Client({ connectionString: postgresAdminUrl });
      await admin.connect();
      await admin.query('select pg_terminate_backend($1)', [pid]);
      await admin.end();
      await tx.execute(sql`select 1`);
    });
    await expect(failed).rejects.toThrow();
    // Without a listener on the client in use, its 'error' event would have ended this process (and the test run) by now.
    await expect(handle().ping()).resolves.toBeUndefined();
    const [row] = await handle()
      .db.insert(tenants)
      .values({ name: `after-${handle().driver}` })
      .returning();
    expect(row!.name).toBe(`after-${handle().driver}`);
  });
}

describe('PGlite driver (embedded default)', () => {
  driverContract(async () => ({
    handle: await openDatabase({ databaseDriver: 'pglite', PGLITE_DIR: 'memory://' }, logger),
    cleanup: async () => {},
  }));
});

describe.skipIf(!hasPostgres)('node-postgres driver, on a real PostgreSQL server', () => {
  driverContract(async () => {
    const database = await createTestDatabase();
    return {
      handle: await openDatabase({ databaseDriver: 'pg', DATABASE_URL: database.url, PGLITE_DIR: '' }, logger),
      cleanup: database.drop,
    };
  }, survivesDroppedConnections);
});

describe.skipIf(!hasPostgres)("Neon's serverless driver, through a WebSocket proxy to the real server", () => {
  driverContract(async () => {
    const database = await createTestDatabase();
    const proxy = await startNeonProxy();
    return {
      handle: await openDatabase(
        { databaseDriver: 'neon', DATABASE_URL: database.url, NEON_WS_PROXY: proxy.template, PGLITE_DIR: '' },
        logger,
      ),
      cleanup: async () => {
        await proxy.close();
        await database.drop();
      },
    };
  }, survivesDroppedConnections);
});
