import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveComponent } from '../../control-plane/components/service.js';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { createTenantWithUser, type TestUser } from '../support/tenants.js';
import { createComponent } from './support.js';

describe('resolveComponent: what a flow node’s componentId names', () => {
  let cp: TestControlPlane;
  let mine: TestUser;
  let other: TestUser;
  let third: TestUser;

  beforeAll(async () => {
    cp = await startTestControlPlane();
    [mine, other, third] = [await createTenantWithUser(cp, ['TENANT_DEVELOPER']), await createTenantWithUser(cp, ['TENANT_DEVELOPER']), await createTenantWithUser(cp, ['TENANT_DEVELOPER'])];
  });
  afterAll(() => cp?.close());

  const resolve = (tenant: TestUser, ref: string) => resolveComponent(cp.services.db, tenant.tenantId, ref);

  it('finds a component by id: the tenant’s own, or another tenant’s public one', async () => {
    const own = await createComponent(cp, mine.token);
    const shared = await createComponent(cp, other.token, { access: 'public' });
    expect(await resolve(mine, own.id)).toEqual(own);
    expect(await resolve(mine, shared.id)).toEqual(shared);
  });

  it('never finds another tenant’s private component, by id or by name', async () => {
    const hidden = await createComponent(cp, other.token);
    expect(await resolve(mine, hidden.id)).toBeNull();
    expect(await resolve(mine, hidden.name)).toBeNull();
    expect(await resolve(other, hidden.name)).toEqual(hidden);
  });

  it('finds a component by name, the tenant’s own before others’ public ones, then the oldest public one', async () => {
    const name = `http-${randomUUID().slice(0, 8)}`;
    const first = await createComponent(cp, other.token, { name, access: 'public' });
    await createComponent(cp, third.token, { name, access: 'public' });
    expect(await resolve(mine, name)).toEqual(first);
    const own = await createComponent(cp, mine.token, { name });
    expect(await resolve(mine, name)).toEqual(own);
  });

  it('answers null for an unknown id or name', async () => {
    expect(await resolve(mine, randomUUID())).toBeNull();
    expect(await resolve(mine, 'no-such-component')).toBeNull();
  });
});
