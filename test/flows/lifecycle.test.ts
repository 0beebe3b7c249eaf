import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MemoryBus } from '../../control-plane/bus/memory.js';
import type { EventEnvelope } from '../../protocol/envelope.js';
import { flowSchema } from '../../protocol/flow.js';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { createTenantWithUser, type TestUser } from '../support/tenants.js';
import { createFlow, eventsAbout, handledByRepository, placed, publishAsRunner, silentRunner } from './support.js';
import { collectEvents, waitFor } from '../support/events.js';

let cp: TestControlPlane;
let user: TestUser;
/** Every flow.* event since the start, collected by a consumer of the test's own. */
let events: EventEnvelope[];

let runner: { stop(): void };

beforeAll(async () => {
  cp = await startTestControlPlane();
  user = await createTenantWithUser(cp, ['TENANT_INTEGRATOR']);
  runner = await silentRunner(cp, user.tenantId);
  events = await collectEvents(cp, 'flow.*');
});
afterAll(async () => {
  runner?.stop();
  await cp?.close();
});

const read = async (id: string) => (await cp.request('GET', `/flows/${id}`, { token: user.token })).body.data;
const control = (id: string, action: 'start' | 'stop') => cp.request('POST', `/flows/${id}/${action}`, { token: user.token });
const until = (id: string, status: string) =>
  waitFor(
    () => read(id),
    (flow) => flow.status === status,
  );
const waitForEvents = (name: string, id: string, n: number) =>
  waitFor(
    async () => eventsAbout(events, name, id),
    (found) => found.length >= n,
  );

/** Publishes a runner's report and waits until the flow repository has handled it. */
async function report(name: 'flow.started' | 'flow.stopped' | 'flow.failed', flow: { id: string }, extra: Record<string, unknown> = {}) {
  const event = await publishAsRunner(cp, name, { id: flow.id, tenant: user.tenantId, ...extra });
  await handledByRepository(cp, event.headers.id);
  return event;
}

/** A new flow brought into `status` the way it gets there in production. */
async function flowIn(status: 'inactive' | 'starting' | 'active' | 'stopping') {
  const flow = await createFlow(cp, user.token);
  if (status === 'inactive') return flow;
  expect((await control(flow.id, 'start')).status).toBe(200);
  await placed(cp, flow.id);
  if (status === 'active') await report('flow.started', flow);
  if (status === 'stopping') expect((await control(flow.id, 'stop')).status).toBe(200);
  expect((await read(flow.id)).status).toBe(status);
  return flow;
}

describe('the lifecycle, driven by events', () => {
  it('start → starting + flow.starting (whole flow) → flow.started → active → stop → stopping + flow.stopping → flow.stopped → inactive', async () => {
    const flow = await createFlow(cp, user.token, { cron: '*/10 * * * *', timezone: 'Europe/Paris' });

    const started = await control(flow.id, 'start');
    expect(started.status).toBe(200);
    expect(started.body).toEqual({ data: { id: flow.id, status: 'starting' } });
    expect(await read(flow.id)).toMatchObject({ status: 'starting', startedBy: user.id, statusReason: null });

    const [starting] = await waitForEvents('flow.starting', flow.id, 1);
    await placed(cp, flow.id);
    expect(starting!.headers.serviceName).toBe('flow-repository');
    expect(flowSchema.safeParse(starting!.payload).success).toBe(true);
    expect(starting!.payload).toMatchObject({ ...flow, status: 'starting', startedBy: user.id, updatedAt: expect.any(String) });

    await publishAsRunner(cp, 'flow.started', { id: flow.id, tenant: user.tenantId });
    await until(flow.id, 'active');

    const stopped = await control(flow.id, 'stop');
    expect(stopped.status).toBe(200);
    expect(stopped.body).toEqual({ data: { id: flow.id, status: 'stopping' } });
    const [stopping] = await waitForEvents('flow.stopping', flow.id, 1);
    expect(stopping!.payload).toMatchObject({
      ...flow,
      status: 'stopping',
      startedBy: user.id,
      stoppedBy: user.id,
      updatedAt: expect.any(String),
    });

    await publishAsRunner(cp, 'flow.stopped', { id: flow.id, tenant: user.tenantId });
    const inactive = await until(flow.id, 'inactive');
    expect(inactive.statusReason).toBeNull();
  });

  it('flow.failed while starting → inactive with the reason, and flow.stopping so listeners tear down; a later flow.stopped changes nothing', async () => {
    const flow = await flowIn('starting');
    await report('flow.failed', flow, { reason: 'image hookline/jsonata:1 not found' });
    const failed = await read(flow.id);
    expect(failed).toMatchObject({ status: 'inactive', statusReason: 'image hookline/jsonata:1 not found' });
    const [stopping] = await waitForEvents('flow.stopping', flow.id, 1);
    expect(stopping!.payload).toMatchObject({
      id: flow.id,
      tenant: user.tenantId,
      status: 'inactive',
      statusReason: 'image hookline/jsonata:1 not found',
      graph: flow.graph,
    });

    await report('flow.stopped', flow);
    expect(await read(flow.id)).toEqual(failed);

    const restarted = await control(flow.id, 'start');
    expect(restarted.status).toBe(200);
    expect(await read(flow.id)).toMatchObject({ status: 'starting', statusReason: null });
    await placed(cp, flow.id);
  });

  it.each(['active', 'stopping'] as const)('flow.failed while %s → inactive with the reason and flow.stopping', async (status) => {
    const flow = await flowIn(status);
    const before = eventsAbout(events, 'flow.stopping', flow.id).length;
    await report('flow.failed', flow, { reason: 'worker crashed' });
    expect(await read(flow.id)).toMatchObject({ status: 'inactive', statusReason: 'worker crashed' });
    await waitForEvents('flow.stopping', flow.id, before + 1);
  });

  it('flow.failed for an inactive flow changes nothing and emits nothing', async () => {
    const flow = await flowIn('inactive');
    await report('flow.failed', flow, { reason: 'late report' });
    expect(await read(flow.id)).toEqual(flow);
    // the next event of this flow is flow.starting: nothing came before it
    await control(flow.id, 'start');
    await waitForEvents('flow.starting', flow.id, 1);
    expect(
      events.filter((e) => e.payload.id === flow.id && e.headers.serviceName === 'flow-repository').map((e) => e.headers.name),
    ).toEqual(['flow.starting']);
  });

  it('flow.started for a flow that is stopping is ignored (the stop overtook it)', async () => {
    const flow = await flowIn('stopping');
    await report('flow.started', flow);
    expect((await read(flow.id)).status).toBe('stopping');
  });

  it('flow.stopped for a flow that is starting or active is ignored', async () => {
    for (const status of ['starting', 'active'] as const) {
      const flow = await flowIn(status);
      await report('flow.stopped', flow);
      expect((await read(flow.id)).status).toBe(status);
    }
  });

  it('a redelivered flow.started (same headers.id) is handled once', async () => {
    const flow = await flowIn('starting');
    const first = await report('flow.started', flow);
    await until(flow.id, 'active');
    await control(flow.id, 'stop');
    await report('flow.stopped', flow);
    await control(flow.id, 'start');
    expect((await read(flow.id)).status).toBe('starting');
    await placed(cp, flow.id);

    await cp.services.bus.publish(first);
    // the embedded bus delivers in order and PGlite runs one transaction at a time, so once a later event is recorded the duplicate has been handled
    await report('flow.stopped', flow);
    expect((await read(flow.id)).status).toBe('starting');
  });

  it('a redelivered flow.failed is handled once: no second flow.stopping', async () => {
    const flow = await flowIn('starting');
    const failed = await report('flow.failed', flow, { reason: 'first failure' });
    await waitForEvents('flow.stopping', flow.id, 1);
    await control(flow.id, 'start');
    await cp.services.bus.publish(failed);
    await report('flow.stopped', flow);
    expect(await read(flow.id)).toMatchObject({ status: 'starting', statusReason: null });
    expect(eventsAbout(events, 'flow.stopping', flow.id)).toHaveLength(1);
  });

  it('a lifecycle event with a malformed payload is dead-lettered and changes nothing; an unknown flow id is ignored', async () => {
    const flow = await flowIn('starting');
    const bus = cp.services.bus as MemoryBus;
    const poison = await publishAsRunner(cp, 'flow.started', { id: flow.id });
    await waitFor(
      async () => bus.deadLetters.filter((d) => d.service === 'flow-repository' && d.event.headers.id === poison.headers.id),
      (found) => found.length === 1,
    );
    await report('flow.started', { id: 'not-a-uuid' });
    await report('flow.started', { id: '00000000-0000-4000-8000-000000000000' });
    expect((await read(flow.id)).status).toBe('starting');
  });
});

describe('what a flow’s status forbids', () => {
  it.each(['starting', 'active', 'stopping'] as const)(
    'a %s flow cannot be edited, deleted or started: 409 naming the status',
    async (status) => {
      const flow = await flowIn(status);
      const before = await read(flow.id);
      const patch = await cp.request('PATCH', `/flows/${flow.id}`, { token: user.token, body: { name: 'renamed' } });
      expect(patch.status).toBe(409);
      expect(patch.body.errors).toEqual([
        {
          message: `Flow ${flow.id} is ${status}; only an inactive flow can be edited: stop it (POST /flows/${flow.id}/stop) and wait until it is inactive`,
          code: 'conflict',
        },
      ]);
      const remove = await cp.request('DELETE', `/flows/${flow.id}`, { token: user.token });
      expect(remove.status).toBe(409);
      expect(remove.body.errors[0].message).toBe(
        `Flow ${flow.id} is ${status}; only an inactive flow can be deleted: stop it (POST /flows/${flow.id}/stop) and wait until it is inactive`,
      );
      const start = await control(flow.id, 'start');
      expect(start.status).toBe(409);
      expect(start.body.errors[0].message).toMatch(new RegExp(`^Flow ${flow.id} is ${status}; only an inactive flow can be started`));
      expect(await read(flow.id)).toEqual(before);
    },
  );

  it('start, stop, patch and delete check the id: 400 malformed, 404 unknown', async () => {
    for (const action of ['start', 'stop'] as const) {
      expect((await cp.request('POST', `/flows/xyz/${action}`, { token: user.token })).status).toBe(400);
      expect((await cp.request('POST', `/flows/00000000-0000-4000-8000-000000000000/${action}`, { token: user.token })).status).toBe(404);
    }
  });
});

describe('stop works from every state', () => {
  it('inactive: 200 with status inactive, nothing changes, no event', async () => {
    const flow = await flowIn('inactive');
    const res = await control(flow.id, 'stop');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ data: { id: flow.id, status: 'inactive' } });
    expect(await read(flow.id)).toEqual(flow);
    await control(flow.id, 'start');
    await waitForEvents('flow.starting', flow.id, 1);
    expect(eventsAbout(events, 'flow.stopping', flow.id)).toEqual([]);
  });

  it.each(['starting', 'active', 'stopping'] as const)('%s: → stopping, with a flow.stopping event', async (status) => {
    const flow = await flowIn(status);
    const before = eventsAbout(events, 'flow.stopping', flow.id).length;
    const res = await control(flow.id, 'stop');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ data: { id: flow.id, status: 'stopping' } });
    const stopping = await waitForEvents('flow.stopping', flow.id, before + 1);
    expect(stopping.at(-1)!.payload).toMatchObject({ id: flow.id, status: 'stopping', stoppedBy: user.id });
    await report('flow.stopped', flow);
    expect((await read(flow.id)).status).toBe('inactive');
  });
});
