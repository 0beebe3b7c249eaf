import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_ERROR_CHARS, MAX_MESSAGES, MAX_PAYLOAD_BYTES } from '../../control-plane/executions/service.js';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { createTenantWithUser, type TestUser } from '../support/tenants.js';
import { executedPayload, executionRef, handled, output, publish, readExecution, waitForExecution } from './support.js';

describe('execution records, from flow.executed and execution.* events', () => {
  let cp: TestControlPlane;
  let user: TestUser;

  beforeAll(async () => {
    cp = await startTestControlPlane();
    user = await createTenantWithUser(cp, ['TENANT_GUEST']);
  });
  afterAll(() => cp?.close());

  it('records an execution from flow.executed, then each step’s messages, then its end', async () => {
    const ref = executionRef(user.tenantId);
    const executed = executedPayload(ref, { order: 42 });
    await publish(cp, 'flow.executed', executed);
    const running = await waitForExecution(cp, user.token, ref.flowExecId);
    expect(running).toMatchObject({
      ...{ flowExecId: ref.flowExecId, flowId: ref.flowId, tenant: user.tenantId },
      status: 'running',
      trigger: 'webhook',
      startedAt: executed.receivedAt,
      finishedAt: null,
      durationMs: null,
      steps: {},
      input: executed.message,
      outputs: [],
      errors: [],
      dropped: { outputs: 0, errors: 0 },
    });

    const message = output({ mapped: true });
    await publish(cp, 'execution.step.started', { ...ref, stepId: 'step_1', messageId: executed.message.id });
    await publish(cp, 'execution.step.succeeded', { ...ref, stepId: 'step_1', messageId: executed.message.id, message, durationMs: 12 });
    await publish(cp, 'execution.step.started', { ...ref, stepId: 'step_2', messageId: message.id });
    await publish(cp, 'execution.step.succeeded', { ...ref, stepId: 'step_2', messageId: message.id, message: output({ sent: true }) });
    const finished = await publish(cp, 'execution.finished', { ...ref, status: 'succeeded' });

    const done = await waitForExecution(cp, user.token, ref.flowExecId, (e) => e.status === 'succeeded' && e.steps.step_2?.out === 1);
    expect(done.steps.step_1).toMatchObject({ in: 1, out: 1, errors: 0 });
    expect(done.steps.step_2).toMatchObject({ in: 1, out: 1, errors: 0 });
    expect(done.outputs).toHaveLength(2);
    expect(done.outputs[0]).toEqual({ stepId: 'step_1', messageId: executed.message.id, message, durationMs: 12, at: expect.any(String) });
    expect(done.outputs[1]).toMatchObject({ stepId: 'step_2', messageId: message.id, durationMs: null });
    expect(done.finishedAt).toBe(finished.headers.createdAt);
    expect(done.durationMs).toBe(new Date(finished.headers.createdAt).getTime() - new Date(executed.receivedAt).getTime());
    expect(await readExecution(cp, user.token, done.id)).toEqual(done);
  });

  it('loses nothing when step events arrive before flow.executed', async () => {
    const ref = executionRef(user.tenantId);
    const executed = executedPayload(ref);
    await publish(cp, 'execution.step.started', { ...ref, stepId: 'step_1' });
    await publish(cp, 'execution.step.succeeded', { ...ref, stepId: 'step_1', message: output('early') });
    await publish(cp, 'execution.finished', { ...ref, status: 'succeeded' });
    await waitForExecution(cp, user.token, ref.flowExecId, (e) => e.status === 'succeeded' && e.steps.step_1?.out === 1);

    await handled(cp, await publish(cp, 'flow.executed', executed));
    const record = await readExecution(cp, user.token, ref.flowExecId);
    expect(record).toMatchObject({ status: 'succeeded', trigger: 'webhook', input: executed.message, startedAt: executed.receivedAt, steps: { step_1: { in: 1, out: 1 } } });
    expect(record.outputs.map((o: { message: { data: unknown } }) => o.message.data)).toEqual(['early']);
  });

  it('applies a redelivered event once', async () => {
    const ref = executionRef(user.tenantId);
    await publish(cp, 'flow.executed', executedPayload(ref));
    const started = await publish(cp, 'execution.step.started', { ...ref, stepId: 'step_1' });
    const succeeded = await publish(cp, 'execution.step.succeeded', { ...ref, stepId: 'step_1', message: output(1) });
    await cp.services.bus.publish(started);
    await cp.services.bus.publish(succeeded);
    const marker = await publish(cp, 'execution.step.started', { ...ref, stepId: 'marker' });
    for (const event of [started, succeeded, marker]) await handled(cp, event);
    const record = await waitForExecution(cp, user.token, ref.flowExecId, (e) => e.steps.marker?.in === 1);
    expect(record.steps.step_1).toMatchObject({ in: 1, out: 1, errors: 0 });
    expect(record.outputs).toHaveLength(1);
  });

  it('records a failed step with its error and the input that caused it, and a failed end with its reason', async () => {
    const ref = executionRef(user.tenantId);
    const input = output({ url: 'https://example.invalid' });
    await publish(cp, 'flow.executed', executedPayload(ref));
    await publish(cp, 'execution.step.started', { ...ref, stepId: 'http', messageId: input.id });
    await publish(cp, 'execution.step.failed', {
      ...ref,
      stepId: 'http',
      messageId: input.id,
      error: { message: 'getaddrinfo ENOTFOUND example.invalid', stack: 'Error: getaddrinfo ENOTFOUND\n    at x.js:1' },
      input,
      attempts: 3,
      durationMs: 5000,
    });
    await publish(cp, 'execution.finished', { ...ref, status: 'failed', reason: 'step http failed' });
    const record = await waitForExecution(cp, user.token, ref.flowExecId, (e) => e.status === 'failed' && e.errors.length === 1);
    expect(record.reason).toBe('step http failed');
    expect(record.steps.http).toMatchObject({ in: 1, out: 0, errors: 1 });
    expect(record.errors[0]).toEqual({
      stepId: 'http',
      messageId: input.id,
      error: { message: 'getaddrinfo ENOTFOUND example.invalid', stack: 'Error: getaddrinfo ENOTFOUND\n    at x.js:1' },
      input,
      attempts: 3,
      durationMs: 5000,
      at: expect.any(String),
    });
  });

  it(`keeps the newest ${MAX_MESSAGES} outputs, counting the dropped ones, and caps payloads and error texts`, async () => {
    const ref = executionRef(user.tenantId);
    await publish(cp, 'flow.executed', executedPayload(ref, { blob: 'x'.repeat(MAX_PAYLOAD_BYTES) }));
    for (let i = 0; i < MAX_MESSAGES + 5; i++) await publish(cp, 'execution.step.succeeded', { ...ref, stepId: 'split', message: output(i) });
    await publish(cp, 'execution.step.failed', { ...ref, stepId: 'split', error: { message: 'e'.repeat(MAX_ERROR_CHARS + 10) }, input: { blob: 'y'.repeat(MAX_PAYLOAD_BYTES) } });
    const record = await waitForExecution(cp, user.token, ref.flowExecId, (e) => e.steps.split?.out === MAX_MESSAGES + 5 && e.steps.split?.errors === 1);

    expect(record.outputs).toHaveLength(MAX_MESSAGES);
    expect(record.dropped).toEqual({ outputs: 5, errors: 0 });
    const kept = record.outputs.map((o: { message: { data: number } }) => o.message.data).sort((a: number, b: number) => a - b);
    expect(kept[0]).toBe(5);
    expect(kept.at(-1)).toBe(MAX_MESSAGES + 4);

    expect(record.input).toEqual({ truncated: true, bytes: expect.any(Number), preview: expect.stringContaining('"blob":"xxx') });
    expect(record.input.bytes).toBeGreaterThan(MAX_PAYLOAD_BYTES);
    expect(record.errors[0].input).toMatchObject({ truncated: true });
    expect(record.errors[0].error.message).toBe(`${'e'.repeat(MAX_ERROR_CHARS)}… (10 more characters)`);
  });

  it('ignores an event of an unknown tenant, and one naming another tenant’s or flow’s execution', async () => {
    const stranger = await createTenantWithUser(cp, ['TENANT_GUEST']);
    const ref = executionRef(user.tenantId);
    await publish(cp, 'flow.executed', executedPayload(ref));
    await waitForExecution(cp, user.token, ref.flowExecId);
    for (const event of [
      await publish(cp, 'execution.step.started', { ...ref, tenant: stranger.tenantId, stepId: 'hijack' }),
      await publish(cp, 'execution.step.started', { ...ref, flowId: randomUUID(), stepId: 'hijack' }),
      await publish(cp, 'execution.finished', { ...ref, tenant: randomUUID(), status: 'failed' }),
      await publish(cp, 'execution.finished', { ...executionRef('not-a-tenant'), status: 'failed' }),
    ]) {
      await handled(cp, event);
    }
    const record = await readExecution(cp, user.token, ref.flowExecId);
    expect(record).toMatchObject({ status: 'running', steps: {} });
    expect((await cp.request('GET', `/executions/${ref.flowExecId}`, { token: stranger.token })).status).toBe(404);
  });
});
