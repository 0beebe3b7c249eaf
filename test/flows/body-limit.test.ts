import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { flows } from '../../control-plane/flows/schema.js';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { createTenantWithUser, type TestUser } from '../support/tenants.js';
import { countFlows, createFlow, flowBody } from './support.js';

let cp: TestControlPlane;
let user: TestUser;

beforeAll(async () => {
  cp = await startTestControlPlane({ env: { BODY_LIMIT_BYTES: '2048' } });
  user = await createTenantWithUser(cp, ['TENANT_INTEGRATOR']);
});
afterAll(() => cp?.close());

const oversized = () => flowBody({ description: 'x'.repeat(1900), flowSettings: { padding: 'y'.repeat(500) } });

it('POST /flows with a body over BODY_LIMIT_BYTES is a 413 and stores nothing', async () => {
  const before = await countFlows(cp);
  const res = await cp.request('POST', '/flows', { token: user.token, body: oversized() });
  expect(res.status).toBe(413);
  expect(res.body.errors).toEqual([{ message: 'Request body is larger than 2048 bytes', code: 'payload_too_large' }]);
  expect(await countFlows(cp)).toBe(before);
});

it('PATCH /flows/{id} with a body over BODY_LIMIT_BYTES is a 413 and changes nothing', async () => {
  const flow = await createFlow(cp, user.token);
  const [before] = await cp.services.db.select().from(flows).where(eq(flows.id, flow.id));
  const res = await cp.request('PATCH', `/flows/${flow.id}`, { token: user.token, body: oversized() });
  expect(res.status).toBe(413);
  const [after] = await cp.services.db.select().from(flows).where(eq(flows.id, flow.id));
  expect(after).toEqual(before);
});

it('a body just under the limit is accepted', async () => {
  const res = await cp.request('POST', '/flows', { token: user.token, body: flowBody({ description: 'x'.repeat(1500) }) });
  expect(res.status).toBe(201);
});
