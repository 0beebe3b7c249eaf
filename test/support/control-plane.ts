import { existsSync } from 'node:fs';
import { cp } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../control-plane/config.js';
import type { Logger } from '../../control-plane/logger.js';
import { startControlPlane, type RunningControlPlane } from '../../control-plane/main.js';
import { migratedPgliteTemplate, migratedPgliteTemplateDir } from './pglite-template.js';
import { createTestDatabase } from './postgres.js';

export const ADMIN = { username: 'admin@hookline.local', password: 'admin-password-for-tests' };

export interface TestControlPlane extends RunningControlPlane {
  /** Logs in and returns the bearer token. */
  login(username?: string, password?: string): Promise<string>;
  /** A JSON request; `body` is sent as JSON unless it is a string (sent raw, for malformed-input tests). */
  request(
    method: string,
    path: string,
    options?: { token?: string; body?: unknown; headers?: Record<string, string> },
  ): Promise<{ status: number; body: any; headers: Headers }>;
  /** Runs `cleanup` when the control plane closes, before it does. */
  onClose(cleanup: () => Promise<void>): void;
}

/**
 * A real control plane on a free port: PGlite in memory by default (from a migrated template), or its
 * own database on the PostgreSQL server (`database: 'pg'`); the in-process bus unless `env` sets AMQP_URL.
 */
export async function startTestControlPlane(
  options: { database?: 'pglite' | 'pg'; env?: Record<string, string>; logger?: Logger } = {},
): Promise<TestControlPlane> {
  const database = options.database === 'pg' ? await createTestDatabase() : null;
  const config = loadConfig({
    PORT: '0',
    PGLITE_DIR: 'memory://',
    ADMIN_PASSWORD: ADMIN.password,
    ...(database ? { DATABASE_URL: database.url } : {}),
    ...options.env,
  });
  let pgliteTemplate: Blob | undefined;
  if (config.databaseDriver === 'pglite' && config.PGLITE_DIR === 'memory://') pgliteTemplate = await migratedPgliteTemplate();
  // On disk, a folder that holds no database yet (a restart on the same folder keeps its own).
  else if (config.databaseDriver === 'pglite' && !existsSync(join(config.PGLITE_DIR, 'PG_VERSION')))
    await cp(await migratedPgliteTemplateDir(), config.PGLITE_DIR, { recursive: true });
  const logger = options.logger ?? pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const running = await startControlPlane(config, logger, { pgliteTemplate });

  const request: TestControlPlane['request'] = async (method, path, { token, body, headers = {} } = {}) => {
    const init: RequestInit = { method, headers: { ...headers } };
    if (token) (init.headers as Record<string, string>).authorization = `Bearer ${token}`;
    if (body !== undefined) {
      init.body = typeof body === 'string' ? body : JSON.stringify(body);
      (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
    }
    const response = await fetch(`${running.url}${path}`, init);
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // not JSON: keep the text
    }
    return { status: response.status, body: parsed, headers: response.headers };
  };

  const cleanups: (() => Promise<void>)[] = [];
  return {
    ...running,
    request,
    onClose: (cleanup) => void cleanups.push(cleanup),
    async login(username = ADMIN.username, password = ADMIN.password) {
      const res = await request('POST', '/login', { body: { username, password } });
      if (res.status !== 200) throw new Error(`login as ${username} failed: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body.data.token as string;
    },
    async close() {
      for (const cleanup of cleanups) await cleanup().catch(() => {});
      await running.close();
      await database?.drop();
    },
  };
}
