import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../control-plane/app.js';
import { startTestControlPlane, type TestControlPlane } from './support/control-plane.js';

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'] as const;

type Operation = { security?: Record<string, string[]>[]; responses?: Record<string, unknown>; summary?: string };
type Document = {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Partial<Record<(typeof METHODS)[number], Operation>>>;
  components: { schemas?: Record<string, unknown>; securitySchemes?: Record<string, unknown> };
};

let cp: TestControlPlane;
let doc: Document;

const operations = () =>
  Object.entries(doc.paths).flatMap(([path, item]) =>
    METHODS.filter((method) => item[method]).map((method) => ({ path, method, operation: item[method]! })),
  );

/** Every `$ref` anywhere in `value`. */
function refs(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(refs);
  if (value && typeof value === 'object') {
    return Object.entries(value).flatMap(([key, v]) => (key === '$ref' && typeof v === 'string' ? [v] : refs(v)));
  }
  return [];
}

beforeAll(async () => {
  cp = await startTestControlPlane();
  const res = await cp.request('GET', '/openapi.json');
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('application/json');
  doc = res.body;
});
afterAll(() => cp?.close());

describe('GET /openapi.json', () => {
  it('is an OpenAPI 3.1 document', () => {
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
    expect(doc.info).toMatchObject({ title: expect.any(String), version: expect.any(String) });
    expect(Object.keys(doc.paths).length).toBeGreaterThan(0);
    for (const { path, method, operation } of operations()) {
      expect(path, 'paths start with /').toMatch(/^\//);
      expect(path, 'path parameters in {braces}').not.toMatch(/:/);
      expect(Object.keys(operation.responses ?? {}).length, `${method} ${path} has responses`).toBeGreaterThan(0);
    }
  });

  it('resolves every $ref to a component it defines', () => {
    const all = refs(doc);
    expect(all.length).toBeGreaterThan(0);
    for (const ref of all) {
      const [, section, name] = /^#\/components\/(\w+)\/(.+)$/.exec(ref) ?? [];
      expect(section, ref).toBeDefined();
      expect((doc.components as Record<string, Record<string, unknown>>)[section!]?.[name!], ref).toBeDefined();
    }
  });

  it('lists the routes of every module', () => {
    const expected: [string, string][] = [
      ['post', '/login'],
      ['post', '/logout'],
      ['get', '/.well-known/jwks.json'],
      ['get', '/api/v1/tokens'],
      ['post', '/api/v1/tokens'],
      ['delete', '/api/v1/tokens/{id}'],
      ['post', '/api/v1/tokens/introspect'],
      ['get', '/api/v1/users'],
      ['post', '/api/v1/users'],
      ['get', '/api/v1/users/me'],
      ['patch', '/api/v1/users/{id}'],
      ['get', '/api/v1/tenants'],
      ['post', '/api/v1/tenants'],
      ['delete', '/api/v1/tenants/{id}'],
      ['get', '/api/v1/roles'],
      ['post', '/api/v1/roles'],
      ['get', '/api/v1/permissions'],
      ['get', '/runners'],
      ['post', '/runners'],
      ['post', '/runners/{id}/heartbeat'],
      ['get', '/flows'],
      ['post', '/flows'],
      ['get', '/flows/{id}'],
      ['patch', '/flows/{id}'],
      ['delete', '/flows/{id}'],
      ['post', '/flows/{id}/start'],
      ['post', '/flows/{id}/stop'],
      ['get', '/logs'],
      ['post', '/logs'],
      ['get', '/components'],
      ['post', '/components'],
      ['get', '/components/{id}'],
      ['patch', '/components/{id}'],
      ['delete', '/components/{id}'],
      ['get', '/executions'],
      ['get', '/executions/{id}'],
      ['get', '/healthcheck'],
    ];
    const listed = operations().map(({ method, path }) => `${method} ${path}`);
    for (const [method, path] of expected) expect(listed).toContain(`${method} ${path}`);
  });

  it('documents every route the app serves, with nothing left out', () => {
    const app = createApp(cp.services);
    const served = new Set(
      app.routes
        .filter((route) => route.method !== 'ALL' && !['/openapi.json', '/docs'].includes(route.path))
        // `:uri{.+}` (a parameter with its own pattern) is documented as `{uri}`.
        .map((route) => `${route.method.toLowerCase()} ${route.path.replace(/:(\w+)(\{[^}]*\})?/g, '{$1}')}`),
    );
    const listed = new Set(operations().map(({ method, path }) => `${method} ${path}`));
    expect([...served].filter((route) => !listed.has(route))).toEqual([]);
  });

  it('declares the bearer scheme on the protected routes, and none on the public ones', () => {
    expect(doc.components.securitySchemes?.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    const security = (method: string, path: string) => (doc.paths[path] as Record<string, Operation>)[method]?.security;
    for (const [method, path] of [
      ['get', '/logs'],
      ['post', '/logs'],
      ['get', '/flows'],
      ['post', '/flows/{id}/start'],
      ['post', '/api/v1/tokens'],
      ['post', '/logout'],
      ['get', '/api/v1/users'],
      ['patch', '/api/v1/roles/{id}'],
    ]) {
      expect(security(method!, path!), `${method} ${path}`).toEqual([{ bearer: [] }]);
    }
    for (const [method, path] of [
      ['post', '/login'],
      ['get', '/healthcheck'],
      ['get', '/.well-known/jwks.json'],
    ]) {
      expect(security(method!, path!) ?? [], `${method} ${path}`).toEqual([]);
    }
    for (const { path, method, operation } of operations()) {
      for (const requirement of operation.security ?? []) {
        for (const scheme of Object.keys(requirement))
          expect(doc.components.securitySchemes?.[scheme], `${method} ${path}: ${scheme}`).toBeDefined();
      }
    }
  });

  it('matches what the routes do: every route documented with the bearer scheme answers 401 without a token', async () => {
    const anyId = '00000000-0000-4000-8000-000000000000';
    for (const { path, method, operation } of operations()) {
      if (!operation.security?.length) continue;
      const res = await cp.request(
        method.toUpperCase(),
        path.replace(/\{\w+\}/g, anyId),
        method === 'get' || method === 'delete' ? {} : { body: {} },
      );
      expect(res.status, `${method} ${path}`).toBe(401);
    }
  });

  it('documents the audit log’s filters and body', () => {
    const list = doc.paths['/logs']!.get as { parameters: { name: string; in: string }[] };
    expect(list.parameters.map((p) => p.name)).toEqual(
      expect.arrayContaining(['page[size]', 'page[number]', 'filter[service]', 'filter[name]', 'filter[from]', 'filter[to]', 'sort']),
    );
    expect(doc.components.schemas).toHaveProperty('AuditPush');
    expect(doc.components.schemas).toHaveProperty('AuditRecordList');
  });
});

describe('GET /docs', () => {
  it('serves an HTML page that loads /openapi.json', async () => {
    const res = await cp.request('GET', '/docs');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    expect(res.body).toContain('<html');
    expect(res.body).toContain('/openapi.json');
  });
});
