import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventEnvelope } from '../../protocol/envelope.js';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { collectEvents, waitFor } from '../support/events.js';
import { createTenantWithUser, createUser, type TestUser } from '../support/tenants.js';
import { componentBody, createComponent } from './support.js';

describe('/components', () => {
  let cp: TestControlPlane;
  let admin: string;
  let developer: TestUser;
  let integrator: TestUser;
  let guest: TestUser;
  let stranger: TestUser;
  let events: EventEnvelope[];

  beforeAll(async () => {
    cp = await startTestControlPlane();
    admin = await cp.login();
    developer = await createTenantWithUser(cp, ['TENANT_DEVELOPER']);
    integrator = await createUser(cp, { tenantId: developer.tenantId, roles: ['TENANT_INTEGRATOR'] });
    guest = await createUser(cp, { tenantId: developer.tenantId, roles: ['TENANT_GUEST'] });
    stranger = await createTenantWithUser(cp, ['TENANT_DEVELOPER']);
    events = await collectEvents(cp, 'components.component.*');
  });
  afterAll(() => cp?.close());

  it('creates, reads, lists, changes and deletes a component, emitting an event for each change', async () => {
    const body = componentBody({ owners: [{ id: 'someone', type: 'user' }] });
    const created = await createComponent(cp, developer.token, body);
    expect(created).toMatchObject({
      name: body.name,
      description: 'Sends HTTP requests',
      access: 'private',
      tenant: developer.tenantId,
      image: 'hookline/http:1.0',
      module: null,
      functions: body.functions,
    });
    expect(created.owners).toEqual([
      { id: 'someone', type: 'user' },
      { id: developer.id, type: 'user' },
      { id: developer.tenantId, type: 'tenant' },
    ]);

    const read = await cp.request('GET', `/components/${created.id}`, { token: integrator.token });
    expect(read.status).toBe(200);
    expect(read.body.data).toEqual(created);

    const list = await cp.request('GET', '/components?page[size]=100', { token: integrator.token });
    expect(list.status).toBe(200);
    expect(list.body.data.map((c: { id: string }) => c.id)).toContain(created.id);
    expect(list.body.meta).toMatchObject({ page: 1, perPage: 100, total: list.body.data.length });

    const changed = await cp.request('PATCH', `/components/${created.id}`, {
      token: developer.token,
      body: { access: 'public', image: null, module: '@hookline/http', functions: [{ name: 'request', kind: 'action' }], owners: [] },
    });
    expect(changed.status, JSON.stringify(changed.body)).toBe(200);
    expect(changed.body.data).toMatchObject({
      name: body.name,
      access: 'public',
      image: null,
      module: '@hookline/http',
      functions: [{ name: 'request', kind: 'action' }],
      owners: [{ id: developer.tenantId, type: 'tenant' }],
    });
    expect(new Date(changed.body.data.updatedAt).getTime()).toBeGreaterThanOrEqual(new Date(created.updatedAt).getTime());

    expect((await cp.request('DELETE', `/components/${created.id}`, { token: developer.token })).status).toBe(204);
    expect((await cp.request('GET', `/components/${created.id}`, { token: developer.token })).status).toBe(404);

    const names = await waitFor(
      async () => events.filter((e) => e.payload.id === created.id).map((e) => e.headers.name),
      (n) => n.length === 3,
    );
    expect(names).toEqual(['components.component.created', 'components.component.modified', 'components.component.deleted']);
    expect(events.find((e) => e.payload.id === created.id)!.payload).toEqual({
      id: created.id,
      tenant: developer.tenantId,
      user: developer.id,
    });
  });

  it('lists by name and pages, and finds a component by its exact name', async () => {
    const tenant = await createTenantWithUser(cp, ['TENANT_DEVELOPER']);
    const prefix = randomUUID().slice(0, 8);
    for (const name of ['c', 'a', 'b']) await createComponent(cp, tenant.token, { name: `${prefix}-${name}` });
    const second = await cp.request('GET', '/components?page[size]=2&page[number]=2', { token: tenant.token });
    expect(second.status).toBe(200);
    expect(second.body.meta).toMatchObject({ page: 2, perPage: 2, totalPages: Math.ceil(second.body.meta.total / 2) });

    const named = await cp.request('GET', `/components?filter[name]=${prefix}-b`, { token: tenant.token });
    expect(named.body.data.map((c: { name: string }) => c.name)).toEqual([`${prefix}-b`]);
    expect(named.body.meta.total).toBe(1);
    const partial = await cp.request('GET', `/components?filter[name]=${prefix}`, { token: tenant.token });
    expect(partial.body.data).toEqual([]);
  });

  it('accepts a module without an image, and refuses a component with neither', async () => {
    const moduleOnly = await createComponent(cp, developer.token, { image: undefined, module: './components/filter/index.js' });
    expect(moduleOnly).toMatchObject({ image: null, module: './components/filter/index.js' });
    const neither = await cp.request('POST', '/components', { token: developer.token, body: componentBody({ image: undefined }) });
    expect(neither.status).toBe(400);
    expect(neither.body.errors[0].message).toMatch(/needs a Docker image, a Node module, or both/);
    const emptied = await cp.request('PATCH', `/components/${moduleOnly.id}`, { token: developer.token, body: { module: null } });
    expect(emptied.status).toBe(400);
    expect(emptied.body.errors[0].message).toMatch(/needs a Docker image, a Node module, or both/);
  });

  it('refuses duplicate function names, on create and on change', async () => {
    const functions = [
      { name: 'request', kind: 'action' },
      { name: 'request', kind: 'trigger' },
    ];
    const res = await cp.request('POST', '/components', { token: developer.token, body: componentBody({ functions }) });
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual([{ message: 'functions: function name "request" is used more than once', code: 'validation_error' }]);
    const component = await createComponent(cp, developer.token);
    const patched = await cp.request('PATCH', `/components/${component.id}`, { token: developer.token, body: { functions } });
    expect(patched.status).toBe(400);
    expect(patched.body.errors[0].message).toContain('function name "request" is used more than once');
  });

  it('keeps names unique within a tenant (409), not across tenants', async () => {
    const component = await createComponent(cp, developer.token);
    const again = await cp.request('POST', '/components', { token: developer.token, body: componentBody({ name: component.name }) });
    expect(again.status).toBe(409);
    expect(again.body.errors[0].message).toContain(component.name);
    await createComponent(cp, stranger.token, { name: component.name });
    const other = await createComponent(cp, developer.token);
    const renamed = await cp.request('PATCH', `/components/${other.id}`, { token: developer.token, body: { name: component.name } });
    expect(renamed.status).toBe(409);
  });

  describe('permissions', () => {
    it('answers 401 without a token, and 403 without components.read or components.write', async () => {
      const component = await createComponent(cp, developer.token);
      expect((await cp.request('GET', '/components')).status).toBe(401);
      expect((await cp.request('GET', `/components/${component.id}`, { token: 'nonsense' })).status).toBe(401);
      const noRead = await cp.request('GET', '/components', { token: guest.token });
      expect(noRead.status).toBe(403);
      expect(noRead.body.errors[0].message).toBe('Missing permission: components.read');
      expect((await cp.request('GET', `/components/${component.id}`, { token: guest.token })).status).toBe(403);
      for (const [method, path, body] of [
        ['POST', '/components', componentBody()],
        ['PATCH', `/components/${component.id}`, { description: 'mine' }],
        ['DELETE', `/components/${component.id}`],
      ] as const) {
        const res = await cp.request(method, path, { token: integrator.token, body });
        expect(res.status, `${method} ${path}`).toBe(403);
        expect(res.body.errors[0].message).toBe('Missing permission: components.write');
      }
    });

    it('hides another tenant’s private component (404) and shows its public one read-only (403 to change)', async () => {
      const hidden = await createComponent(cp, developer.token);
      const shown = await createComponent(cp, developer.token, { access: 'public' });
      for (const [method, body] of [['GET'], ['PATCH', { description: 'mine' }], ['DELETE']] as const) {
        const res = await cp.request(method, `/components/${hidden.id}`, { token: stranger.token, body });
        expect(res.status, method).toBe(404);
        expect(res.body.errors[0].message).toBe(`No component ${hidden.id} that you may see`);
      }
      expect((await cp.request('GET', `/components/${shown.id}`, { token: stranger.token })).status).toBe(200);
      for (const [method, body] of [['PATCH', { description: 'mine' }], ['DELETE']] as const) {
        const res = await cp.request(method, `/components/${shown.id}`, { token: stranger.token, body });
        expect(res.status, method).toBe(403);
        expect(res.body.errors[0].message).toMatch(/belongs to another tenant/);
      }
      const listed = (await cp.request('GET', '/components?page[size]=100', { token: stranger.token })).body.data.map(
        (c: { id: string }) => c.id,
      );
      expect(listed).toContain(shown.id);
      expect(listed).not.toContain(hidden.id);
    });

    it('lets holders of `all` see and change every component', async () => {
      const component = await createComponent(cp, stranger.token);
      expect((await cp.request('GET', `/components/${component.id}`, { token: admin })).status).toBe(200);
      const listed = await cp.request('GET', `/components?filter[name]=${component.name}`, { token: admin });
      expect(listed.body.data.map((c: { id: string }) => c.id)).toEqual([component.id]);
      const changed = await cp.request('PATCH', `/components/${component.id}`, { token: admin, body: { description: 'reviewed' } });
      expect(changed.body.data).toMatchObject({ description: 'reviewed', tenant: stranger.tenantId });
    });
  });

  describe('bad input', () => {
    const post = (body: unknown) => cp.request('POST', '/components', { token: developer.token, body });

    it('refuses malformed JSON, and a body that is not JSON (415)', async () => {
      const res = await post('{"name": ');
      expect(res.status).toBe(400);
      expect(res.body.errors).toEqual([{ message: 'Malformed JSON in request body', code: 'bad_request' }]);
      const component = await createComponent(cp, developer.token);
      const patched = await cp.request('PATCH', `/components/${component.id}`, { token: developer.token, body: '{"name": "x"' });
      expect(patched.status).toBe(400);
      const text = await cp.request('POST', '/components', {
        token: developer.token,
        body: 'name=x',
        headers: { 'content-type': 'text/plain' },
      });
      expect(text.status).toBe(415);
    });

    it('names every wrong field', async () => {
      const res = await post({
        name: '',
        access: 'secret',
        image: 'Not An Image!',
        functions: [{ name: 'has space', kind: 'transform' }],
        extra: true,
      });
      expect(res.status).toBe(400);
      const messages = res.body.errors.map((e: { message: string }) => e.message).join('\n');
      expect(messages).toMatch(/^name: /m);
      expect(messages).toMatch(/^access: /m);
      expect(messages).toMatch(/^image: must be a Docker image name/m);
      expect(messages).toMatch(/^functions\.0\.name: must be a JavaScript identifier/m);
      expect(messages).toMatch(/^functions\.0\.kind: /m);
      expect(messages).toMatch(/extra/);
    });

    it('refuses a module that names code outside what a runner trusts: URLs of any scheme, absolute paths, . and .. segments', async () => {
      const refused: [string, RegExp][] = [
        ['data:text/javascript,export const run = () => process.env', /not a URL: data: modules are refused/],
        ['node:child_process', /not a URL: node: modules are refused/],
        ['file:///etc/passwd', /not a URL: file: modules are refused/],
        ['http://evil.example/x.mjs', /not a URL: http: modules are refused/],
        ['hookline:http', /not a URL: hookline: modules are refused/],
        ['C:/windows/evil.mjs', /not a URL: C: modules are refused/],
        ['/work/main/.hookline/secrets-master.key', /not an absolute path/],
        ['../../.hookline/runner-token', /\. or \.\. segments/],
        ['./components/../../../etc/passwd', /\. or \.\. segments/],
        ['@acme/crm/../../../etc/passwd', /\. or \.\. segments/],
        ['./a/./b.mjs', /\. or \.\. segments/],
        ['pkg/%2e%2e/%2e%2e/x.mjs', /letters, digits/],
        ['.\\..\\x.mjs', /letters, digits/],
        ['@acme', /@scope\/name/],
        ['./', /letters, digits/],
      ];
      for (const [module, message] of refused) {
        const res = await post(componentBody({ module }));
        expect(res.status, module).toBe(400);
        expect(res.body.errors[0].message, module).toMatch(/^module: /);
        expect(res.body.errors[0].message, module).toMatch(message);
      }
      const component = await createComponent(cp, developer.token, { module: './crm/index.mjs' });
      const patched = await cp.request('PATCH', `/components/${component.id}`, {
        token: developer.token,
        body: { module: 'data:text/javascript,1' },
      });
      expect(patched.status).toBe(400);
      expect(patched.body.errors[0].message).toMatch(/^module: .*not a URL/);
      expect((await cp.request('GET', `/components/${component.id}`, { token: developer.token })).body.data.module).toBe('./crm/index.mjs');
      for (const module of [
        'crm',
        '@acme/crm',
        '@acme/crm/actions.js',
        'lodash.get',
        './crm.ts',
        './crm/v1.2/index.mjs',
        './.well-known/x.mjs',
      ]) {
        expect((await post(componentBody({ module }))).status, module).toBe(201);
      }
    });

    it('refuses wrong types and missing functions', async () => {
      const res = await post({ name: 42, image: 'hookline/x', functions: 'request' });
      expect(res.status).toBe(400);
      expect(res.body.errors.map((e: { message: string }) => e.message)).toEqual([
        expect.stringMatching(/^name: /),
        expect.stringMatching(/^functions: /),
      ]);
      const missing = await post({ name: 'x', image: 'hookline/x' });
      expect(missing.status).toBe(400);
      expect(missing.body.errors[0].message).toMatch(/^functions: /);
    });

    it('refuses unknown fields in a change and in a function', async () => {
      const component = await createComponent(cp, developer.token);
      const res = await cp.request('PATCH', `/components/${component.id}`, { token: developer.token, body: { tenant: stranger.tenantId } });
      expect(res.status).toBe(400);
      expect(res.body.errors[0].message).toMatch(/tenant/);
      const fn = await post(componentBody({ functions: [{ name: 'a', kind: 'action', handler: 'x' }] }));
      expect(fn.status).toBe(400);
      expect(fn.body.errors[0].message).toMatch(/^functions\.0: .*handler/);
    });

    it('answers 400 for a malformed id and 404 for an unknown one', async () => {
      for (const [method, body] of [['GET'], ['PATCH', { description: 'x' }], ['DELETE']] as const) {
        const malformed = await cp.request(method, '/components/not-a-uuid', { token: developer.token, body });
        expect(malformed.status, method).toBe(400);
        expect(malformed.body.errors[0].message).toMatch(/^id: /);
        const unknown = randomUUID();
        const missing = await cp.request(method, `/components/${unknown}`, { token: developer.token, body });
        expect(missing.status, method).toBe(404);
        expect(missing.body.errors[0].message).toBe(`No component ${unknown} that you may see`);
      }
    });

    it('refuses unknown query parameters', async () => {
      const res = await cp.request('GET', '/components?filter[nme]=x', { token: developer.token });
      expect(res.status).toBe(400);
      expect(res.body.errors[0].message).toMatch(/filter\[nme\]/);
    });
  });
});
