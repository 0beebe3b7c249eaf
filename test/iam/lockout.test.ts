import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { outbox } from '../../control-plane/bus/schema.js';
import type { EventEnvelope } from '../../protocol/envelope.js';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { collectEvents, waitFor } from '../support/events.js';
import { postgresAvailable } from '../support/postgres.js';
import { createTenant, createUser } from '../support/tenants.js';

const MAX_FAILURES = 5;
const GUESSES = 40;
const databases = ['pglite', ...((await postgresAvailable()) ? ['pg' as const] : [])] as const;

describe.each(databases)('the login lock under concurrent guesses, on %s', (database) => {
  let cp: TestControlPlane;
  let events: EventEnvelope[];
  beforeAll(async () => {
    cp = await startTestControlPlane({ database, env: { LOGIN_MAX_FAILURES: String(MAX_FAILURES), LOGIN_LOCK_SECONDS: '300' } });
    events = await collectEvents(cp, 'iam.user.loginFailed');
  });
  afterAll(() => cp?.close());

  /** The loginFailed events of `userId`, once there are `expected` and every event written so far has been published. */
  async function failuresOf(userId: string, expected: number) {
    const mine = () => Promise.resolve(events.filter((e) => e.payload.id === userId).map((e) => e.payload));
    await waitFor(mine, (found) => found.length >= expected, 30_000);
    await waitFor(
      async () => (await cp.services.db.select().from(outbox)).length,
      (n) => n === 0,
      30_000,
    );
    return mine();
  }
  const statuses = (responses: { status: number }[]) => responses.map((r) => r.status).sort();

  it(`checks at most LOGIN_MAX_FAILURES of ${GUESSES} concurrent wrong passwords; the rest, and then the right one, get 429`, async () => {
    const user = await createUser(cp, { tenantId: (await createTenant(cp)).id, roles: ['TENANT_GUEST'] });
    const guesses = await Promise.all(
      Array.from({ length: GUESSES }, (_, i) =>
        cp.request('POST', '/login', { body: { username: user.username, password: `wrong-guess-number-${i}` } }),
      ),
    );
    expect(statuses(guesses)).toEqual([...Array(MAX_FAILURES).fill(401), ...Array(GUESSES - MAX_FAILURES).fill(429)]);
    const locked = guesses.find((r) => r.status === 429)!;
    expect(locked.body.errors[0]).toMatchObject({
      code: 'too_many_requests',
      message: expect.stringMatching(/locked for \d+ more seconds/),
    });
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(200);

    const right = await cp.request('POST', '/login', { body: { username: user.username, password: user.password } });
    expect(right.status).toBe(429);
    expect(right.body.errors[0].code).toBe('too_many_requests');
    const failures = await failuresOf(user.id, MAX_FAILURES);
    expect(failures.map((p) => p.attempts).sort()).toEqual([1, 2, 3, 4, 5]);
    expect(failures.filter((p) => p.locked).map((p) => p.attempts)).toEqual([MAX_FAILURES]);
  });

  it(`checks at most LOGIN_MAX_FAILURES of ${GUESSES} concurrent wrong current passwords, and they lock the login too`, async () => {
    const user = await createUser(cp, { tenantId: (await createTenant(cp)).id, roles: ['TENANT_GUEST'] });
    const guesses = await Promise.all(
      Array.from({ length: GUESSES }, (_, i) =>
        cp.request('PATCH', `/api/v1/users/${user.id}`, {
          token: user.token,
          body: { password: 'a-brand-new-password', currentPassword: `wrong-guess-number-${i}` },
        }),
      ),
    );
    expect(statuses(guesses)).toEqual([...Array(MAX_FAILURES).fill(403), ...Array(GUESSES - MAX_FAILURES).fill(429)]);
    expect(guesses.find((r) => r.status === 403)!.body.errors[0].message).toBe('currentPassword is wrong');
    const rightCurrent = await cp.request('PATCH', `/api/v1/users/${user.id}`, {
      token: user.token,
      body: { password: 'a-brand-new-password', currentPassword: user.password },
    });
    expect(rightCurrent.status).toBe(429);
    expect((await cp.request('POST', '/login', { body: { username: user.username, password: user.password } })).status).toBe(429);
    expect((await cp.request('POST', '/login', { body: { username: user.username, password: 'a-brand-new-password' } })).status).toBe(429);
    expect(await failuresOf(user.id, MAX_FAILURES)).toHaveLength(MAX_FAILURES);
  });

  it('a right password before the limit clears the count', async () => {
    const user = await createUser(cp, { tenantId: (await createTenant(cp)).id });
    const login = (password: string) => cp.request('POST', '/login', { body: { username: user.username, password } });
    for (let round = 0; round < 2; round++) {
      for (let attempt = 1; attempt < MAX_FAILURES; attempt++) expect((await login('a-wrong-password')).status).toBe(401);
      expect((await login(user.password)).status).toBe(200);
    }
  });
});
