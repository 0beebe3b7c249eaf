import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestEdge, type TestEdge } from '../support/edge.js';
import { waitFor } from '../support/events.js';

interface State {
  trigger: unknown;
  nextDue: number | null;
  pending: number;
  executions: { flowExecId: string; trigger: string; message: { data: { scheduledAt: string; nextAt: string } } }[];
}

/** Schedules on the Durable Object's alarm, in workerd, on the wall clock (no control plane: deliveries fail and the outbox keeps every execution). */
describe('schedules at the edge', () => {
  let edge: TestEdge;
  beforeAll(async () => {
    edge = await startTestEdge();
  });
  afterAll(() => edge?.close());

  const state = async (flowId: string) => ((await (await edge.control('GET', `/control/flows/${flowId}`)).json()) as { data: State }).data;

  it('fires a per-second schedule once per slot, with the slot and the next one, until the flow stops', async () => {
    const flowId = randomUUID();
    await edge.push({ flowId, cron: '* * * * * *', timezone: 'Europe/Berlin' });
    const running = await waitFor(
      () => state(flowId),
      (s) => s.executions.length >= 3,
    );
    const slots = running.executions.map((e) => Date.parse(e.message.data.scheduledAt));
    expect(new Set(running.executions.map((e) => e.flowExecId)).size).toBe(running.executions.length);
    for (let i = 1; i < slots.length; i++) expect(slots[i]! - slots[i - 1]!).toBe(1000);
    for (const execution of running.executions) {
      expect(execution.trigger).toBe('schedule');
      expect(execution.flowExecId).toBe(`sched:${flowId}:${execution.message.data.scheduledAt}`);
      expect(Date.parse(execution.message.data.nextAt) - Date.parse(execution.message.data.scheduledAt)).toBe(1000);
    }

    expect((await edge.control('DELETE', `/control/flows/${flowId}?version=1000000`)).status).toBe(200);
    const stopped = await state(flowId);
    expect(stopped.nextDue).toBeNull();
    // Nothing is scheduled, and an alarm that comes anyway (one set before the stop) fires nothing.
    await (await edge.trigger(flowId)).runAlarm();
    expect((await state(flowId)).executions.length).toBe(stopped.executions.length);
  });

  it('does not fire while the flow is only starting, and starts from the next slot once live', async () => {
    const flowId = randomUUID();
    await edge.push({ flowId, cron: '* * * * * *', status: 'starting' });
    // No slot is scheduled, and an alarm that comes anyway fires nothing.
    expect((await state(flowId)).nextDue).toBeNull();
    await (await edge.trigger(flowId)).runAlarm();
    expect((await state(flowId)).executions).toHaveLength(0);
    const wentLive = Date.now();
    await edge.push({ flowId, cron: '* * * * * *' });
    const live = await waitFor(
      () => state(flowId),
      (s) => s.executions.length >= 1,
    );
    // The first slot after it went live, not one missed while it was starting.
    expect(Date.parse(live.executions[0]!.message.data.scheduledAt)).toBeGreaterThan(wentLive - 1000);
  });
});
