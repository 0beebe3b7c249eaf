import { fullFormats } from 'ajv-formats/dist/formats.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { urlFormat } from '../../protocol/json-schema.js';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { createTenantWithUser, type TestUser } from '../support/tenants.js';
import { addSchema, countSchemas, createDomain, zipOf, postArchive } from './support.js';

/** `^(a+)+$` backtracks 2^n steps on n letters a and a mismatch: at 40 letters, days with a backtracking engine. */
const EVIL = '^(a+)+$';
const evilInput = `${'a'.repeat(40)}!`;

describe('tenant patterns in JSON Schemas run in linear time (RE2)', () => {
  let cp: TestControlPlane;
  let owner: TestUser;
  let domainId: string;

  const validate = (uri: string, document: unknown) =>
    cp.request('POST', `/api/v1/domains/${domainId}/schemas/${uri}/validate`, { token: owner.token, body: document });

  beforeAll(async () => {
    cp = await startTestControlPlane();
    owner = await createTenantWithUser(cp, ['TENANT_ADMIN']);
    domainId = (await createDomain(cp, owner.token)).id;
  });
  afterAll(() => cp?.close());

  it('validates the issue’s ^(a+)+$ against 40 characters, while other requests answer beside it', async () => {
    await addSchema(cp, owner.token, domainId, {
      uri: 'evil.json',
      value: {
        type: 'object',
        properties: { name: { type: 'string', pattern: EVIL } },
        patternProperties: { [EVIL]: { type: 'number' } },
        propertyNames: { pattern: '^(a+)+$|^name$' },
      },
    });
    // With a backtracking engine the first validation holds the process, so none of these would answer.
    const [evil, health, good] = await Promise.all([
      validate('evil.json', { name: evilInput, [evilInput]: 1, aaaa: 'x' }),
      cp.request('GET', '/healthcheck'),
      validate('evil.json', { name: 'aaaa', aaa: 1 }),
    ]);
    expect(health.status).toBe(200);
    expect(good.body.data).toEqual({ valid: true });
    expect(evil.status).toBe(200);
    expect(evil.body.data.valid).toBe(false);
    // propertyNames reports at the object, naming the property.
    expect(evil.body.data.errors.map((e: { path: string; keyword: string }) => `${e.path} ${e.keyword}`).sort()).toEqual([
      ' pattern',
      ' propertyNames',
      '/aaaa type',
      '/name pattern',
    ]);
  });

  it('checks the url format in linear time too: a 300 KB value that held the process 14 s is answered at once', async () => {
    await addSchema(cp, owner.token, domainId, { uri: 'link.json', value: { properties: { link: { type: 'string', format: 'url' } } } });
    const slow = await validate('link.json', { link: `http://${'ffff:'.repeat(60_000)}!` });
    expect(slow.body.data).toEqual({ valid: false, errors: [{ path: '/link', message: 'must match format "url"', keyword: 'format' }] });
    expect((await validate('link.json', { link: 'https://user:pw@example.com:8443/a?b=c' })).body.data).toEqual({ valid: true });
    expect((await validate('link.json', { link: 'http://10.1.2.3/' })).body.data.valid).toBe(false);
  });

  it('keeps ajv-formats’ meaning of url, private IPv4 hosts refused', () => {
    const samples = [
      'http://example.com',
      'https://sub.example.co.uk:8080/path?q=1#x',
      'ftp://user:pw@files.example.org/a',
      'http://1.2.3.4',
      'http://223.255.255.254/x',
      'http://10.0.0.1',
      'http://127.0.0.1:80',
      'http://169.254.1.1',
      'http://192.168.0.10/',
      'http://172.16.5.5',
      'http://172.31.0.1',
      'http://172.32.0.1',
      'http://u@10.0.0.1',
      'http://localhost',
      'http://例え.テスト',
      'mailto:a@example.com',
      'http://exa mple.com',
      'http://-a.com',
      'http://a.b',
      'HTTP://EXAMPLE.COM',
      '',
    ];
    const original = fullFormats.url as RegExp;
    expect(samples.map((sample) => [sample, urlFormat(sample)])).toEqual(samples.map((sample) => [sample, original.test(sample)]));
  });

  it('refuses a pattern RE2 cannot run (backreferences, lookarounds) with a 400 naming it, storing nothing', async () => {
    const before = await countSchemas(cp, domainId);
    const cases: [Record<string, unknown>, string][] = [
      [{ type: 'string', pattern: '^(a)\\1$' }, '^(a)\\\\1$'],
      [{ properties: { x: { pattern: '(?<=a)b' } } }, '(?<=a)b'],
      [{ patternProperties: { '^(?!x)': {} } }, '^(?!x)'],
      [{ propertyNames: { pattern: '(?<n>a)\\k<n>' } }, '(?<n>a)\\\\k<n>'],
      [{ definitions: { deep: { items: { pattern: 'a(?=b)' } } } }, 'a(?=b)'],
    ];
    for (const [value, named] of cases) {
      const res = await cp.request('POST', `/api/v1/domains/${domainId}/schemas`, {
        token: owner.token,
        body: { uri: 'refused.json', value },
      });
      expect(res.status, JSON.stringify(value)).toBe(400);
      expect(res.body.errors[0].message).toContain(`value: pattern "${named}" cannot be run in linear time`);
      expect(res.body.errors[0].message).toContain('backreferences and lookarounds are not supported');
    }
    await addSchema(cp, owner.token, domainId, { uri: 'fine.json', value: { type: 'string', pattern: '^[a-z]+$' } });
    const put = await cp.request('PUT', `/api/v1/domains/${domainId}/schemas/fine.json`, {
      token: owner.token,
      body: { value: { type: 'string', pattern: '(a)\\1' } },
    });
    expect(put.status).toBe(400);
    expect(put.body.errors[0].message).toMatch(/^value: pattern "\(a\)\\\\1" cannot be run in linear time/);
    const imported = await postArchive(
      cp,
      owner.token,
      domainId,
      zipOf({ 'ok.json': { type: 'string' }, 'bad.json': { pattern: '(?!a)' } }),
      'application/zip',
    );
    expect(imported.status).toBe(400);
    expect(imported.body.errors[0].message).toMatch(/^bad\.json: pattern "\(\?!a\)" cannot be run in linear time/);
    expect(await countSchemas(cp, domainId)).toBe(before + 1);
    expect((await validate('fine.json', '"abc"')).body.data).toEqual({ valid: true });
  });
});
