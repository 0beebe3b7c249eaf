import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../control-plane/logger.js';
import { ADMIN, startTestControlPlane, type TestControlPlane } from './support/control-plane.js';

describe('structured logs', () => {
  const lines: Record<string, unknown>[] = [];
  let cp: TestControlPlane;

  beforeAll(async () => {
    const sink = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
        done();
      },
    });
    // The production logger (redaction included), written to the test's sink.
    cp = await startTestControlPlane({ logger: createLogger('info', sink) });
  });
  afterAll(() => cp.close());

  it('log every request with its request id, which the response carries too', async () => {
    const res = await cp.request('GET', '/healthcheck', { headers: { 'x-request-id': 'trace-me-123' } });
    expect(res.headers.get('x-request-id')).toBe('trace-me-123');
    const generated = await cp.request('GET', '/flows');
    const id = generated.headers.get('x-request-id');
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(lines).toContainEqual(
      expect.objectContaining({ msg: 'request', requestId: 'trace-me-123', method: 'GET', path: '/healthcheck', status: 200 }),
    );
    expect(lines).toContainEqual(expect.objectContaining({ msg: 'request', requestId: id, path: '/flows', status: 401 }));
  });

  it('never write a password or a token', async () => {
    const token = await cp.login();
    await cp.request('GET', '/flows', { token });
    await cp.request('POST', '/login', { body: { username: ADMIN.username, password: 'a-wrong-password-to-log' } });
    // Whatever a module logs, secrets in the object are redacted.
    cp.services.logger.info({ password: 'logged-by-mistake', user: { token }, headers: { authorization: `Bearer ${token}` } }, 'probe');
    const text = JSON.stringify(lines);
    expect(lines).toContainEqual(
      expect.objectContaining({ msg: 'probe', password: '[redacted]', headers: { authorization: '[redacted]' } }),
    );
    expect(text).not.toContain('logged-by-mistake');
    expect(text).not.toContain(ADMIN.password);
    expect(text).not.toContain('a-wrong-password-to-log');
    expect(text).not.toContain(token);
  });
});
