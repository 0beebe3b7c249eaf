import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eq, isNull } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedBuiltinComponents } from '../../control-plane/components/builtins.js';
import { components } from '../../control-plane/components/schema.js';
import type { Component } from '../../protocol/component.js';
import { BUILTIN_COMPONENTS, type BuiltinComponent } from '../../protocol/builtins.js';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { postgresAvailable } from '../support/postgres.js';
import { createTenantWithUser, createUser, type TestUser } from '../support/tenants.js';
import { createComponent } from './support.js';

const NAMES = BUILTIN_COMPONENTS.map((b) => b.name);
const hasPostgres = await postgresAvailable();

/** The built-in rows as stored, by name. */
async function storedBuiltins(cp: TestControlPlane) {
  const rows = await cp.services.db.select().from(components).where(isNull(components.tenantId));
  return Object.fromEntries(rows.map((row) => [row.name, row]));
}

describe('built-in components in the repository', () => {
  let cp: TestControlPlane;
  let admin: string;
  let developer: TestUser;
  let guest: TestUser;

  beforeAll(async () => {
    cp = await startTestControlPlane();
    // main.ts seeds at start; seeding again is a no-op, so this holds whether or not it did.
    await seedBuiltinComponents(cp.services.db);
    admin = await cp.login();
    developer = await createTenantWithUser(cp, ['TENANT_DEVELOPER']);
    guest = await createUser(cp, { tenantId: developer.tenantId, roles: ['TENANT_GUEST'] });
  });
  afterAll(() => cp?.close());

  it('are seeded with their fixed ids, public, of no tenant, with the definitions of runner/components', async () => {
    const stored = await storedBuiltins(cp);
    expect(Object.keys(stored).sort()).toEqual([...NAMES].sort());
    for (const builtin of BUILTIN_COMPONENTS) {
      expect(stored[builtin.name]).toMatchObject({
        id: builtin.id,
        tenantId: null,
        access: 'public',
        owners: [],
        description: builtin.description,
        image: builtin.image,
        module: `hookline:${builtin.name}`,
        functions: builtin.functions,
      });
    }
  });

  it('seeding again changes nothing', async () => {
    const before = await storedBuiltins(cp);
    expect(await seedBuiltinComponents(cp.services.db)).toEqual({ created: [], updated: [], removed: [] });
    expect(await storedBuiltins(cp)).toEqual(before);
  });

  it('a new version’s definitions update the same rows, and a built-in it no longer has is removed', async () => {
    const before = await storedBuiltins(cp);
    const upgraded: BuiltinComponent[] = BUILTIN_COMPONENTS.filter((b) => b.name !== 'debug').map((b) =>
      b.name === 'http'
        ? {
            ...b,
            description: 'HTTP, version 2',
            image: 'hookline/step-worker:9.9.9',
            functions: [...b.functions, { name: 'poll', kind: 'trigger' }],
          }
        : b,
    );
    expect(await seedBuiltinComponents(cp.services.db, upgraded)).toEqual({ created: [], updated: ['http'], removed: ['debug'] });
    const after = await storedBuiltins(cp);
    expect(after.http).toMatchObject({
      id: before.http!.id,
      description: 'HTTP, version 2',
      image: 'hookline/step-worker:9.9.9',
      createdAt: before.http!.createdAt,
    });
    expect(after.http!.functions.map((f) => f.name)).toEqual(['request', 'poll']);
    expect(after.http!.updatedAt.getTime()).toBeGreaterThan(before.http!.updatedAt.getTime());
    expect(after.jsonata).toEqual(before.jsonata);
    expect(after.debug).toBeUndefined();
    const read = await cp.request('GET', `/components/${before.http!.id}`, { token: developer.token });
    expect(read.body.data).toMatchObject({ description: 'HTTP, version 2' });

    // And back: the current definitions again, debug under its old id.
    expect(await seedBuiltinComponents(cp.services.db)).toEqual({ created: ['debug'], updated: ['http'], removed: [] });
    const restored = await storedBuiltins(cp);
    expect(restored.debug!.id).toBe(before.debug!.id);
    expect(restored.http).toMatchObject({
      description: before.http!.description,
      image: before.http!.image,
      functions: before.http!.functions,
    });
  });

  it('refuses a built-in that is not a valid component, writing nothing', async () => {
    const broken = [{ ...BUILTIN_COMPONENTS[0]!, image: 'Not An Image' }];
    await expect(seedBuiltinComponents(cp.services.db, broken)).rejects.toThrow(/Built-in component webhook is not a valid component/);
    expect(Object.keys(await storedBuiltins(cp))).toHaveLength(NAMES.length);
  });

  it('keeps one built-in per name', async () => {
    const http = BUILTIN_COMPONENTS.find((b) => b.name === 'http')!;
    const twin = cp.services.db
      .insert(components)
      .values({ tenantId: null, name: 'http', access: 'public', owners: [], module: http.module, functions: [] });
    await expect(twin).rejects.toThrow();
  });

  it('are listed for every caller with components.read, flagged builtIn, tenant null', async () => {
    for (const token of [developer.token, admin]) {
      const res = await cp.request('GET', '/components?page[size]=100', { token });
      expect(res.status).toBe(200);
      const builtins = res.body.data.filter((c: Component) => c.builtIn);
      expect(builtins.map((c: Component) => c.name).sort()).toEqual([...NAMES].sort());
      for (const c of builtins) expect(c).toMatchObject({ tenant: null, access: 'public', owners: [] });
    }
    const named = await cp.request('GET', '/components?filter[name]=jsonata', { token: developer.token });
    expect(named.body.data).toEqual([
      expect.objectContaining({ id: BUILTIN_COMPONENTS.find((b) => b.name === 'jsonata')!.id, builtIn: true }),
    ]);
    const own = await createComponent(cp, developer.token);
    expect(own).toMatchObject({ builtIn: false, tenant: developer.tenantId });
    expect((await cp.request('GET', '/components', { token: guest.token })).status).toBe(403);
  });

  it('are read-only through the API, for admins too (403)', async () => {
    const http = BUILTIN_COMPONENTS.find((b) => b.name === 'http')!;
    expect((await cp.request('GET', `/components/${http.id}`, { token: developer.token })).body.data).toMatchObject({
      name: 'http',
      builtIn: true,
    });
    for (const token of [developer.token, admin]) {
      for (const [method, body] of [['PATCH', { description: 'mine now' }], ['DELETE']] as const) {
        const res = await cp.request(method, `/components/${http.id}`, { token, body });
        expect(res.status, method).toBe(403);
        expect(res.body.errors[0]).toEqual({
          code: 'forbidden',
          message: expect.stringMatching(/^Built-in components cannot be changed or deleted: http/),
        });
      }
    }
    const [row] = await cp.services.db.select().from(components).where(eq(components.id, http.id));
    expect(row).toMatchObject({ description: http.description });
  });

  it('leave a tenant free to register a component of a built-in’s name', async () => {
    const own = await createComponent(cp, developer.token, { name: 'http' });
    expect(own).toMatchObject({ name: 'http', tenant: developer.tenantId, builtIn: false });
    const named = await cp.request('GET', '/components?filter[name]=http', { token: developer.token });
    expect(named.body.data.map((c: Component) => c.builtIn).sort()).toEqual([false, true]);
  });
});

describe('built-in components across a restart', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hookline-builtins-'));
  const env = { PGLITE_DIR: join(dir, 'pglite'), SECRETS_MASTER_KEY_FILE: join(dir, 'master.key') };
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('stay the same rows: same ids, createdAt and updatedAt, one per name', async () => {
    const first = await startTestControlPlane({ env });
    await seedBuiltinComponents(first.services.db);
    const before = await storedBuiltins(first);
    await first.close();

    const second = await startTestControlPlane({ env });
    try {
      expect(await seedBuiltinComponents(second.services.db)).toEqual({ created: [], updated: [], removed: [] });
      expect(await storedBuiltins(second)).toEqual(before);
      expect(Object.keys(before)).toHaveLength(NAMES.length);
    } finally {
      await second.close();
    }
  });
});

describe.runIf(hasPostgres)('built-in components on PostgreSQL', () => {
  let cp: TestControlPlane;
  beforeAll(async () => {
    cp = await startTestControlPlane({ database: 'pg' });
  });
  afterAll(() => cp?.close());

  it('are seeded once when replicas seed at the same time', async () => {
    const { db } = cp.services;
    await db.delete(components).where(isNull(components.tenantId));
    const results = await Promise.all([seedBuiltinComponents(db), seedBuiltinComponents(db), seedBuiltinComponents(db)]);
    expect(results.flatMap((r) => r.created).sort()).toEqual([...NAMES].sort());
    expect(results.flatMap((r) => [...r.updated, ...r.removed])).toEqual([]);
    expect(Object.keys(await storedBuiltins(cp)).sort()).toEqual([...NAMES].sort());
  });
});
