import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { pgliteTakingTurns } from './pglite-turns.js';
import * as schema from './schema.js';

export type Database = PgDatabase<PgQueryResultHKT, typeof schema>;

export interface DatabaseHandle {
  db: Database;
  driver: Config['databaseDriver'];
  /** Applies the SQL migrations in migrations/ that have not run yet. */
  migrate(): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

const migrationsFolder = fileURLToPath(new URL('../../migrations', import.meta.url));

type DatabaseConfig = Pick<Config, 'databaseDriver' | 'DATABASE_URL' | 'PGLITE_DIR' | 'NEON_WS_PROXY'>;

export interface OpenOptions {
  /** PGlite starts from this data folder (a `dumpDataDir()` tarball) instead of running initdb: tests boot from a migrated one. */
  pgliteTemplate?: Blob;
}

/** Opens the database the configuration names: PGlite, node-postgres or Neon's serverless driver. */
export async function openDatabase(config: DatabaseConfig, logger: Logger, options: OpenOptions = {}): Promise<DatabaseHandle> {
  const ping = (db: Database) => async () => void (await db.execute(sql`select 1`));
  switch (config.databaseDriver) {
    case 'pglite': {
      const { PGlite } = await import('@electric-sql/pglite');
      const { drizzle } = await import('drizzle-orm/pglite');
      const { migrate } = await import('drizzle-orm/pglite/migrator');
      if (config.PGLITE_DIR !== 'memory://') mkdirSync(config.PGLITE_DIR, { recursive: true });
      const client = new PGlite({ dataDir: config.PGLITE_DIR, loadDataDir: options.pgliteTemplate });
      const db = drizzle({ client: pgliteTakingTurns(client), schema });
      return {
        db: db as unknown as Database,
        driver: 'pglite',
        migrate: () => migrate(db, { migrationsFolder }),
        ping: ping(db as unknown as Database),
        close: () => client.close(),
      };
    }
    case 'pg': {
      const { Pool } = await import('pg');
      const { drizzle } = await import('drizzle-orm/node-postgres');
      const { migrate } = await import('drizzle-orm/node-postgres/migrator');
      const pool = new Pool({ connectionString: config.DATABASE_URL, max: 10 });
      survivesDroppedConnections(pool, logger);
      const db = drizzle({ client: pool, schema });
      return {
        db: db as unknown as Database,
        driver: 'pg',
        migrate: () => migrate(db, { migrationsFolder }),
        ping: ping(db as unknown as Database),
        close: () => pool.end(),
      };
    }
    case 'neon': {
      const { Pool, neonConfig } = await import('@neondatabase/serverless');
      const { drizzle } = await import('drizzle-orm/neon-serverless');
      const { migrate } = await import('drizzle-orm/neon-serverless/migrator');
      const { WebSocket } = await import('ws');
      neonConfig.webSocketConstructor = WebSocket;
      const proxy = config.NEON_WS_PROXY;
      if (proxy) {
        // A plain PostgreSQL behind a local WebSocket-to-TCP proxy, as in development and tests.
        neonConfig.wsProxy = (host, port) => proxy.replace('{host}', host).replace('{port}', String(port));
        neonConfig.useSecureWebSocket = false;
        neonConfig.pipelineTLS = false;
        neonConfig.pipelineConnect = false;
      }
      const pool = new Pool({ connectionString: config.DATABASE_URL, max: 10 });
      survivesDroppedConnections(pool, logger);
      const db = drizzle({ client: pool, schema });
      return {
        db: db as unknown as Database,
        driver: 'neon',
        migrate: () => migrate(db, { migrationsFolder }),
        ping: ping(db as unknown as Database),
        close: () => pool.end(),
      };
    }
  }
}

interface ClientPool {
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'connect', listener: (client: { on(event: 'error', listener: (error: Error) => void): unknown }) => void): unknown;
}

/**
 * A connection the server drops (a restart, a failover, pg_terminate_backend) must never take the
 * process down. The pool's own 'error' covers idle connections only; a connection in use (inside
 * a transaction, say) emits 'error' on its client, which crashes the process without a listener.
 * Its query fails with the error, the caller sees that, and the pool replaces the connection.
 */
function survivesDroppedConnections(pool: ClientPool, logger: Logger): void {
  pool.on('error', (error) => logger.warn({ err: error }, 'database: an idle connection was closed'));
  pool.on('connect', (client) => client.on('error', (error) => logger.warn({ err: error }, 'database: a connection in use was closed')));
}

/** Whether a query failed on a unique constraint (PostgreSQL 23505), as every driver reports it through drizzle. */
export function isUniqueViolation(error: unknown): boolean {
  const code = (e: unknown) => (e as { code?: unknown } | undefined)?.code;
  return code(error) === '23505' || code((error as { cause?: unknown } | undefined)?.cause) === '23505';
}

/** `text` with LIKE's wildcards (`%`, `_`) and its escape character taken literally. */
export const escapeLike = (text: string) => text.replace(/[\\%_]/g, (char) => `\\${char}`);

/** Whether `value` is a UUID: PostgreSQL refuses anything else where a uuid column is compared. */
export const isUuid = (value: string) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value);
