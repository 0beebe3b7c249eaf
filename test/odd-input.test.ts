import { Writable } from 'node:stream';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { users } from '../control-plane/iam/schema.js';
import { createLogger } from '../control-plane/logger.js';
import { MAX_JSON_DEPTH } from '../protocol/storable.js';
import { countFlows, flowBody } from './flows/support.js';
import { ADMIN, startTestControlPlane, type TestControlPlane } from './support/control-plane.js';
import { postgresAvailable } from './support/postgres.js';

const deep = (levels: number) => `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`;
const NUL = '\u0000';
const LONE = '\ud800';

for (const database of ['pglite', 'pg'] as const) {
  describe.skipIf(database === 'pg' && !(await postgresAvailable()))(
    `input no database can store is a 400 naming the field (${database})`,
    () => {
      let cp: TestControlPlane;
      let token: string;
      const lines: Record<string, unknown>[] = [];

      beforeAll(async () => {
        const sink = new Writable({
          write(chunk, _encoding, done) {
            for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
            done();
          },
        });
        cp = await startTestControlPlane({ database, logger: createLogger('info', sink) });
        token = await cp.login();
      });
      afterAll(() => cp?.close());

      it('refuses a NUL character or a lone surrogate in an unauthenticated login, naming the field', async () => {
        for (const [text, what] of [
          [NUL, /NUL character/],
          [LONE, /lone surrogate/],
        ] as const) {
          const res = await cp.request('POST', '/login', { body: { username: `admin${text}@hookline.local`, password: ADMIN.password } });
          expect(res.status).toBe(400);
          expect(res.body.errors[0].message).toMatch(new RegExp(`^body\\.username: .*${what.source}`));
        }
        const raw = await cp.request('POST', '/login', { body: `{"username":"a\\u0000b","password":"${ADMIN.password}"}` });
        expect(raw.status).toBe(400);
        expect(raw.body.errors[0].message).toMatch(/^body\.username: contains a NUL character/);
      });

      it('refuses them in any text field, in keys, in query parameters (search, filter) and in the path, storing nothing', async () => {
        const before = await countFlows(cp);
        const named = await cp.request('POST', '/flows', { token, body: flowBody({ name: `orders${NUL}` }) });
        expect(named.status).toBe(400);
        expect(named.body.errors[0].message).toMatch(/^body\.name: contains a NUL character/);
        const field = await cp.request('POST', '/flows', { token, body: flowBody({ flowSettings: { [`key${LONE}`]: 1 } }) });
        expect(field.status).toBe(400);
        expect(field.body.errors[0].message).toMatch(/^body\.flowSettings: a key contains a lone surrogate/);
        expect(await countFlows(cp)).toBe(before);

        const search = await cp.request('GET', '/flows?search=a%00b', { token });
        expect(search.status).toBe(400);
        expect(search.body.errors[0].message).toMatch(/^query search: contains a NUL character/);
        const filterNul = await cp.request('GET', '/api/v1/users?filter[tenant]=%00', { token });
        expect(filterNul.status).toBe(400);
        expect(filterNul.body.errors[0].message).toMatch(/^query filter\[tenant\]: contains a NUL character/);
        const path = await cp.request('GET', '/flows/a%00b', { token });
        expect(path.status).toBe(400);
        expect(path.body.errors[0].message).toMatch(/^path: contains a NUL character/);
      });

      it(`refuses JSON nested deeper than ${MAX_JSON_DEPTH} levels (10,000 levels: a 400, not a stack overflow) and takes one at the limit`, async () => {
        const tooDeep = await cp.request('POST', '/flows', {
          token,
          body: JSON.stringify(flowBody({ flowSettings: { deep: '@' } })).replace('"@"', deep(10_000)),
        });
        expect(tooDeep.status).toBe(400);
        expect(tooDeep.body.errors[0].message).toMatch(
          new RegExp(`^body\\.flowSettings\\.deep(\\.a)*: nested deeper than ${MAX_JSON_DEPTH} levels$`),
        );
        // body (1) > flowSettings (2) > deep (3): the rest of the depth is the value's.
        const atLimit = await cp.request('POST', '/flows', {
          token,
          body: JSON.stringify(flowBody({ flowSettings: { deep: '@' } })).replace('"@"', deep(MAX_JSON_DEPTH - 2)),
        });
        expect(atLimit.status, JSON.stringify(atLimit.body)).toBe(201);
      });

      it('logs a failed query without its parameters', async () => {
        const hash = 'scrypt$32768$8$1$c2FsdC1zZWNyZXQ$do-not-log-this-hash';
        const failed = await cp.services.db
          .insert(users)
          .values({ username: sql`'a' || 1/0`, passwordHash: hash, kind: 'person' } as never)
          .catch((error: unknown) => error);
        expect(failed).toBeInstanceOf(Error);
        cp.services.logger.error({ err: failed }, 'probe: a query failed');
        const logged = lines.find((line) => line.msg === 'probe: a query failed') as { err: { message: string; stack: string } };
        expect(logged.err.message).toMatch(/^Failed query: insert into "users"/);
        expect(JSON.stringify(lines)).not.toContain('do-not-log-this-hash');
      });
    },
  );
}
