import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventEnvelope } from '../../protocol/envelope.js';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { collectEvents, waitFor } from '../support/events.js';
import { createTenant, createUser, type TestUser } from '../support/tenants.js';

describe('passwords', () => {
  let cp: TestControlPlane;
  let root: string;
  let tenantAdmin: TestUser;
  let events: EventEnvelope[];
  beforeAll(async () => {
    cp = await startTestControlPlane();
    root = await cp.login();
    tenantAdmin = await createUser(cp, { tenantId: (await createTenant(cp)).id, roles: ['TENANT_ADMIN'] });
    events = await collectEvents(cp, 'iam.user.loginFailed');
  });
  afterAll(() => cp.close());

  const patch = (token: string, user: { id: string }, body: unknown) => cp.request('PATCH', `/api/v1/users/${user.id}`, { token, body });
  const loginStatus = async (username: string, password: string) =>
    (await cp.request('POST', '/login', { body: { username, password } })).status;
  const member = () => createUser(cp, { tenantId: tenantAdmin.tenantId, roles: ['TENANT_GUEST'] });

  describe('changing your own', () => {
    it('needs the current password: 400 without it, 403 with a wrong one (a failed login), and nothing changes', async () => {
      const user = await member();
      const missing = await patch(user.token, user, { password: 'a-brand-new-password' });
      expect(missing.status).toBe(400);
      expect(missing.body.errors[0].message).toBe('currentPassword: give your current password to set a new one');
      const wrong = await patch(user.token, user, { password: 'a-brand-new-password', currentPassword: 'not-my-password' });
      expect(wrong.status).toBe(403);
      expect(wrong.body.errors[0].message).toBe('currentPassword is wrong');
      const [failure] = await waitFor(
        async () => events.filter((e) => e.payload.id === user.id),
        (found) => found.length === 1,
      );
      expect(failure!.payload).toMatchObject({ attempts: 1, locked: false, tenant: user.tenantId });

      expect(await loginStatus(user.username, user.password)).toBe(200);
      expect(await loginStatus(user.username, 'a-brand-new-password')).toBe(401);
      expect((await cp.request('GET', '/api/v1/users/me', { token: user.token })).status).toBe(200);
    });

    it('with the current password it works, and ends the sessions', async () => {
      const user = await member();
      const changed = await patch(user.token, user, { password: 'a-brand-new-password', currentPassword: user.password });
      expect(changed.status).toBe(200);
      expect((await cp.request('GET', '/api/v1/users/me', { token: user.token })).status).toBe(401);
      expect(await loginStatus(user.username, user.password)).toBe(401);
      expect(await loginStatus(user.username, 'a-brand-new-password')).toBe(200);
    });

    it('applies to admins too, while resetting someone else’s needs no current password (and refuses one)', async () => {
      const own = await patch(tenantAdmin.token, tenantAdmin, { password: 'a-brand-new-password' });
      expect(own.status).toBe(400);
      expect(own.body.errors[0].message).toMatch(/^currentPassword:/);

      const user = await member();
      const withCurrent = await patch(tenantAdmin.token, user, { password: 'a-brand-new-password', currentPassword: user.password });
      expect(withCurrent.status).toBe(400);
      expect(withCurrent.body.errors[0].message).toBe('currentPassword: give it only with password, to change your own');
      expect((await patch(user.token, user, { firstname: 'Ada', currentPassword: user.password })).status).toBe(400);
      expect((await patch(tenantAdmin.token, user, { password: 'a-brand-new-password' })).status).toBe(200);
      expect(await loginStatus(user.username, 'a-brand-new-password')).toBe(200);
      expect((await patch(root, user, { password: 'another-brand-new-password' })).status).toBe(200);
      expect(await loginStatus(user.username, 'another-brand-new-password')).toBe(200);
    });
  });

  describe('the policy', () => {
    const weak: [string, RegExp][] = [
      ['aaaaaaaaaaaa', /Repeated characters/],
      ['abcdefghijkl', /character sequences/],
      ['Password1234', /commonly used password/],
      ['qwertyuiop12', /commonly used password/],
    ];

    it.each(weak)('refuses %j on creation, saying why, and creates nobody', async (password, reason) => {
      const username = `p-${randomUUID().slice(0, 8)}@example.com`;
      const res = await cp.request('POST', '/api/v1/users', { token: tenantAdmin.token, body: { username, password } });
      expect(res.status).toBe(400);
      expect(res.body.errors[0].message).toMatch(/^password: too easy to guess\. /);
      expect(res.body.errors[0].message).toMatch(reason);
      expect((await cp.request('GET', `/api/v1/users?search=${encodeURIComponent(username)}`, { token: root })).body.data).toEqual([]);
    });

    it('refuses the username, or the names, as the password', async () => {
      const username = `ada.lovelace.${randomUUID().slice(0, 4)}@example.com`;
      for (const body of [
        { username, password: username },
        { username, password: username.toUpperCase() },
        { username, firstname: 'Augusta', lastname: 'Kingsbury', password: 'AugustaKingsbury' },
      ]) {
        const res = await cp.request('POST', '/api/v1/users', { token: tenantAdmin.token, body });
        expect(res.status, body.password).toBe(400);
        expect(res.body.errors[0].message).toMatch(/^password: too easy to guess\. There should not be any personal/);
      }
    });

    it('applies to every change: your own, and an admin’s reset', async () => {
      const user = await member();
      const own = await patch(user.token, user, { password: 'aaaaaaaaaaaa', currentPassword: user.password });
      expect(own.status).toBe(400);
      expect(own.body.errors[0].message).toMatch(/^password: too easy to guess/);
      const reset = await patch(tenantAdmin.token, user, { password: user.username });
      expect(reset.status).toBe(400);
      const renamed = await patch(tenantAdmin.token, user, { username: 'grace.hopper@example.com', password: 'grace.hopper@example.com' });
      expect(renamed.status).toBe(400);
      expect(await loginStatus(user.username, user.password)).toBe(200);
    });

    it('accepts what is hard to guess', async () => {
      for (const password of ['correct horse battery staple', 'a-long-enough-password', `xK9#mQ2vL7pW`]) {
        const res = await cp.request('POST', '/api/v1/users', {
          token: tenantAdmin.token,
          body: { username: `p-${randomUUID().slice(0, 8)}`, password },
        });
        expect(res.status, password).toBe(201);
      }
    });
  });
});
