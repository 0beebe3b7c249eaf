import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedBuiltinComponents } from '../../control-plane/components/builtins.js';
import { components } from '../../control-plane/components/schema.js';
import { resolveComponent } from '../../control-plane/components/service.js';
import { BUILTIN_COMPONENTS } from '../../protocol/builtins.js';
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
    await seedBuiltinComponents(cp.services.db);
    [mine, other, third] = [
      await createTenantWithUser(cp, ['TENANT_DEVELOPER']),
      await createTenantWithUser(cp, ['TENANT_DEVELOPER']),
      await createTenantWithUser(cp, ['TENANT_DEVELOPER']),
    ];
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

  it('finds a built-in by name after the tenant’s own component, before other tenants’ public ones, however old', async () => {
    const builtin = BUILTIN_COMPONENTS.find((b) => b.name === 'jsonata')!;
    const older = await createComponent(cp, other.token, { name: 'jsonata', access: 'public' });
    await cp.services.db
      .update(components)
      .set({ createdAt: new Date('2000-01-01T00:00:00Z') })
      .where(eq(components.id, older.id));
    await createComponent(cp, third.token, { name: 'jsonata' });
    expect(await resolve(mine, 'jsonata')).toMatchObject({ id: builtin.id, builtIn: true, tenant: null, module: 'hookline:jsonata' });
    expect(await resolve(other, 'jsonata')).toMatchObject({ id: older.id, builtIn: false });
    const own = await createComponent(cp, mine.token, { name: 'jsonata' });
    expect(await resolve(mine, 'jsonata')).toEqual(own);
    // By id a built-in is found by everyone, whatever their tenant has of its name.
    expect(await resolve(mine, builtin.id)).toMatchObject({ id: builtin.id, name: 'jsonata' });
    expect(await resolve(third, 'jsonata')).toMatchObject({ tenant: third.tenantId });
  });

  it('answers null for an unknown id or name', async () => {
    expect(await resolve(mine, randomUUID())).toBeNull();
    expect(await resolve(mine, 'no-such-component')).toBeNull();
  });
});
