import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STOPPED_REASON } from '../../control-plane/executions/finish.js';
import { MAX_ERROR_CHARS, MAX_MESSAGES } from '../../control-plane/executions/records.js';
import { MAX_RECORDED_PAYLOAD_BYTES as MAX_PAYLOAD_BYTES } from '../../protocol/step-message.js';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { waitFor } from '../support/events.js';
import { createTenantWithUser, type TestUser } from '../support/tenants.js';
import {
  apply,
  deliver,
  applyResults,
  createFlowRow,
  executedPayload,
  executionRef,
  finishedEvents,
  handled,
  output,
  readExecution,
  report,
  runningExecution,
  stepResult,
  trackedDeliveries,
} from './support.js';

describe('execution records, from flow.executed and execution.step.results', () => {
  let cp: TestControlPlane;
  let user: TestUser;
  let finished: Awaited<ReturnType<typeof finishedEvents>>;
  const warnings: Record<string, any>[] = [];

  beforeAll(async () => {
    const sink = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) warnings.push(JSON.parse(line));
        done();
      },
    });
    cp = await startTestControlPlane({ logger: pino({ level: 'warn' }, sink) });
    user = await createTenantWithUser(cp, ['TENANT_GUEST']);
    finished = await finishedEvents(cp);
  });
  afterAll(() => cp?.close());

  const read = (flowExecId: string) => readExecution(cp, user.token, flowExecId);
  const finishedOf = async (flowExecId: string) => (await finished.settled()).filter((e) => e.payload.flowExecId === flowExecId);

  it('records an execution from flow.executed and its steps’ results, and ends it when every delivery has a result', async () => {
    const ref = await runningExecution(cp, user.tenantId);
    const receivedAt = new Date(Date.now() - 1000);
    const executed = executedPayload(ref, { order: 42 }, receivedAt);
    await deliver(cp, executed);
    const recorded = await read(ref.flowExecId);
    // Recorded when the delivery arrived, a second after the edge received the call.
    expect(Date.parse(recorded.recordedAt)).toBeGreaterThan(receivedAt.getTime() + 500);
    expect(Date.parse(recorded.recordedAt)).toBeLessThanOrEqual(Date.now());
    expect(recorded).toMatchObject({
      ...{ flowExecId: ref.flowExecId, flowId: ref.flowId, tenant: user.tenantId },
      status: 'running',
      reason: null,
      trigger: 'webhook',
      startedAt: receivedAt.toISOString(),
      finishedAt: null,
      durationMs: null,
      steps: {},
      input: executed.message,
      outputs: [],
      errors: [],
      dropped: { outputs: 0, errors: 0 },
    });

    // a -> b: a maps the input into one output, delivered to b as d1; b sends it on and has nothing to deliver.
    const mapped = output({ mapped: true });
    const aStart = new Date(receivedAt.getTime() + 100);
    const bStart = new Date(receivedAt.getTime() + 200);
    await applyResults(
      cp,
      stepResult(ref, 'a', executed.message.id, { outputs: [mapped], delivered: ['d1'], startedAt: aStart, durationMs: 12 }),
    );
    const halfway = await read(ref.flowExecId);
    expect(halfway).toMatchObject({
      status: 'running',
      finishedAt: null,
      steps: { a: { in: 1, out: 1, errors: 0, firstAt: aStart.toISOString() } },
    });
    expect(halfway.steps.a.lastAt).toBe(new Date(aStart.getTime() + 12).toISOString());

    await applyResults(cp, stepResult(ref, 'b', 'd1', { outputs: [output({ sent: true })], startedAt: bStart, durationMs: 30 }));
    const done = await read(ref.flowExecId);
    const end = new Date(bStart.getTime() + 30);
    expect(done).toMatchObject({
      status: 'succeeded',
      reason: null,
      finishedAt: end.toISOString(),
      durationMs: end.getTime() - receivedAt.getTime(),
    });
    expect(done.steps).toEqual({
      a: { in: 1, out: 1, errors: 0, firstAt: aStart.toISOString(), lastAt: new Date(aStart.getTime() + 12).toISOString() },
      b: { in: 1, out: 1, errors: 0, firstAt: bStart.toISOString(), lastAt: end.toISOString() },
    });
    expect(done.outputs).toEqual([
      { stepId: 'a', messageId: executed.message.id, message: mapped, durationMs: 12, at: new Date(aStart.getTime() + 12).toISOString() },
      { stepId: 'b', messageId: 'd1', message: expect.objectContaining({ data: { sent: true } }), durationMs: 30, at: end.toISOString() },
    ]);
    expect(await trackedDeliveries(cp, ref.flowExecId)).toEqual([]);
    expect((await finishedOf(ref.flowExecId)).map((e) => e.payload)).toEqual([{ ...ref, status: 'succeeded' }]);
    expect((await finishedOf(ref.flowExecId))[0]!.headers.serviceName).toBe('executions');
  });

  it('applies a result once, however often it is reported, and emits execution.finished once', async () => {
    const ref = await runningExecution(cp, user.tenantId);
    const executed = executedPayload(ref);
    await deliver(cp, executed);
    const a = stepResult(ref, 'a', executed.message.id, { outputs: [output(1), output(2)], delivered: ['d1', 'd2'] });
    const b1 = stepResult(ref, 'b', 'd1');
    // Twice in one batch, again in another batch, and the same envelope delivered again.
    const first = await applyResults(cp, a, a, b1);
    await applyResults(cp, a, b1);
    await cp.services.bus.publish(first);
    await handled(cp, first);
    const running = await read(ref.flowExecId);
    expect(running).toMatchObject({ status: 'running', steps: { a: { in: 1, out: 2, errors: 0 }, b: { in: 1, out: 0, errors: 0 } } });
    expect(running.outputs).toHaveLength(2);

    await applyResults(cp, stepResult(ref, 'b', 'd2'));
    await applyResults(cp, stepResult(ref, 'b', 'd2'), b1);
    const done = await read(ref.flowExecId);
    expect(done).toMatchObject({ status: 'succeeded', steps: { a: { in: 1, out: 2 }, b: { in: 2, out: 0 } } });
    expect(await finishedOf(ref.flowExecId)).toHaveLength(1);
  });

  it('ends an execution whatever order its events arrive in: results before flow.executed, b’s result before a’s', async () => {
    const ref = await runningExecution(cp, user.tenantId);
    const receivedAt = new Date(Date.now() - 5000);
    const executed = executedPayload(ref, { order: 7 }, receivedAt);
    const bStart = new Date(receivedAt.getTime() + 300);
    await applyResults(cp, stepResult(ref, 'b', 'd1', { outputs: [output('late')], startedAt: bStart }));
    // Until flow.executed, startedAt is the earliest result's start.
    expect(await read(ref.flowExecId)).toMatchObject({ status: 'running', trigger: null, startedAt: bStart.toISOString(), input: null });

    await applyResults(
      cp,
      stepResult(ref, 'a', executed.message.id, {
        outputs: [output('early')],
        delivered: ['d1'],
        startedAt: new Date(receivedAt.getTime() + 100),
      }),
    );
    const waiting = await read(ref.flowExecId);
    expect(waiting).toMatchObject({ status: 'running', steps: { a: { in: 1, out: 1 }, b: { in: 1, out: 1 } } });
    expect(await trackedDeliveries(cp, ref.flowExecId)).toEqual([{ deliveryId: executed.message.id, delivered: false, done: true }]);

    await deliver(cp, executed);
    const done = await read(ref.flowExecId);
    expect(done).toMatchObject({
      status: 'succeeded',
      trigger: 'webhook',
      input: executed.message,
      startedAt: receivedAt.toISOString(),
      finishedAt: new Date(bStart.getTime() + 5).toISOString(),
    });
    expect(await trackedDeliveries(cp, ref.flowExecId)).toEqual([]);
    expect(await finishedOf(ref.flowExecId)).toHaveLength(1);
  });

  it('waits for every target of a fan-out: a step delivering to two steps ends the execution only when both are done', async () => {
    const ref = await runningExecution(cp, user.tenantId);
    const executed = executedPayload(ref);
    await deliver(cp, executed);
    const split = output('split');
    // a's one output goes to b (d-b) and to c (d-c); b passes it on to d (d-d).
    await applyResults(cp, stepResult(ref, 'a', executed.message.id, { outputs: [split], delivered: ['d-b', 'd-c'] }));
    await applyResults(cp, stepResult(ref, 'b', 'd-b', { outputs: [output('b')], delivered: ['d-d'] }));
    await applyResults(cp, stepResult(ref, '__proto__', 'd-c')); // a valid step id, counted like any other
    expect(await read(ref.flowExecId)).toMatchObject({ status: 'running' });
    expect(await trackedDeliveries(cp, ref.flowExecId)).toEqual([{ deliveryId: 'd-d', delivered: true, done: false }]);
    await applyResults(cp, stepResult(ref, 'd', 'd-d'));
    const done = await read(ref.flowExecId);
    expect(done).toMatchObject({ status: 'succeeded', steps: { a: { in: 1, out: 1 }, b: { in: 1, out: 1 }, d: { in: 1, out: 0 } } });
    expect(Object.hasOwn(done.steps, '__proto__')).toBe(true);
    expect(Object.getOwnPropertyDescriptor(done.steps, '__proto__')?.value).toMatchObject({ in: 1, out: 0, errors: 0 });
  });

  it('fails an execution one of whose steps failed an input, once every other branch is done, naming the first failure', async () => {
    const ref = await runningExecution(cp, user.tenantId);
    const executed = executedPayload(ref);
    const t0 = Date.now();
    await deliver(cp, executed);
    const input = output({ url: 'https://example.invalid' });
    await applyResults(
      cp,
      stepResult(ref, 'a', executed.message.id, { outputs: [input], delivered: ['d-http', 'd-mail', 'd-log'], startedAt: new Date(t0) }),
    );
    const error = { message: 'getaddrinfo ENOTFOUND example.invalid', stack: 'Error: getaddrinfo ENOTFOUND\n    at x.js:1' };
    // mail fails later than http, but its result arrives first: the reason names http, the first to fail.
    await applyResults(
      cp,
      stepResult(ref, 'mail', 'd-mail', { error: { message: 'mailbox full' }, input, startedAt: new Date(t0 + 9000), durationMs: 10 }),
    );
    await applyResults(
      cp,
      stepResult(ref, 'http', 'd-http', { error, input, attempts: 3, startedAt: new Date(t0 + 10), durationMs: 5000 }),
    );
    const running = await read(ref.flowExecId);
    expect(running).toMatchObject({
      status: 'running',
      reason: null,
      steps: { http: { in: 1, out: 0, errors: 1 }, mail: { in: 1, errors: 1 } },
    });

    await applyResults(cp, stepResult(ref, 'log', 'd-log'));
    const record = await read(ref.flowExecId);
    expect(record).toMatchObject({
      status: 'failed',
      reason: 'step http failed: getaddrinfo ENOTFOUND example.invalid (2 inputs failed in all)',
      finishedAt: new Date(t0 + 9010).toISOString(),
    });
    expect(record.errors).toEqual([
      { stepId: 'http', messageId: 'd-http', error, input, attempts: 3, durationMs: 5000, at: new Date(t0 + 5010).toISOString() },
      {
        stepId: 'mail',
        messageId: 'd-mail',
        error: { message: 'mailbox full' },
        input,
        attempts: 1,
        durationMs: 10,
        at: new Date(t0 + 9010).toISOString(),
      },
    ]);
    expect((await finishedOf(ref.flowExecId)).map((e) => e.payload)).toEqual([{ ...ref, status: 'failed', reason: record.reason }]);
  });

  it('counts results that arrive after the end, without changing the status or tracking their deliveries', async () => {
    const ref = await runningExecution(cp, user.tenantId);
    const executed = executedPayload(ref);
    await deliver(cp, executed);
    await applyResults(cp, stepResult(ref, 'a', executed.message.id));
    const done = await read(ref.flowExecId);
    expect(done.status).toBe('succeeded');
    await applyResults(
      cp,
      stepResult(ref, 'b', 'stray', { error: { message: 'too late' }, delivered: [] }),
      stepResult(ref, 'c', 'other', { outputs: [output(1)], delivered: ['x'] }),
    );
    const after = await read(ref.flowExecId);
    expect(after).toMatchObject({
      status: 'succeeded',
      reason: null,
      finishedAt: done.finishedAt,
      steps: { b: { in: 1, errors: 1 }, c: { in: 1, out: 1 } },
    });
    expect(after.errors).toHaveLength(1);
    expect(await trackedDeliveries(cp, ref.flowExecId)).toEqual([]);
    expect(await finishedOf(ref.flowExecId)).toHaveLength(1);
  });

  it('fails every running execution of a flow when the flow stops, and leaves its ended ones and other flows’ alone', async () => {
    const flowId = await createFlowRow(cp, user.tenantId);
    const [running, early, ended] = [
      executionRef(user.tenantId, flowId),
      executionRef(user.tenantId, flowId),
      executionRef(user.tenantId, flowId),
    ];
    const other = await runningExecution(cp, user.tenantId);
    const runningExecuted = executedPayload(running);
    await deliver(cp, runningExecuted);
    await applyResults(cp, stepResult(running, 'a', runningExecuted.message.id, { delivered: ['d1'] }));
    await applyResults(cp, stepResult(early, 'b', 'd9')); // flow.executed not arrived yet
    const endedExecuted = executedPayload(ended);
    await deliver(cp, endedExecuted);
    await applyResults(cp, stepResult(ended, 'a', endedExecuted.message.id));
    await deliver(cp, executedPayload(other));

    const stopped = await apply(cp, 'flow.stopped', { id: flowId, tenant: user.tenantId });
    for (const ref of [running, early]) {
      expect(await read(ref.flowExecId)).toMatchObject({ status: 'failed', reason: STOPPED_REASON, finishedAt: stopped.headers.createdAt });
      expect(await trackedDeliveries(cp, ref.flowExecId)).toEqual([]);
      expect((await finishedOf(ref.flowExecId)).map((e) => e.payload)).toEqual([{ ...ref, status: 'failed', reason: STOPPED_REASON }]);
    }
    expect(await read(ended.flowExecId)).toMatchObject({ status: 'succeeded', reason: null });
    expect(await read(other.flowExecId)).toMatchObject({ status: 'running' });

    // What arrives for a stopped execution still counts, and ends nothing.
    await applyResults(cp, stepResult(running, 'b', 'd1'));
    expect(await read(running.flowExecId)).toMatchObject({
      status: 'failed',
      reason: STOPPED_REASON,
      steps: { a: { in: 1 }, b: { in: 1 } },
    });
    expect(await finishedOf(running.flowExecId)).toHaveLength(1);
  });

  it('fails at once an execution of a flow that is not running, or not in its tenant, whether its results came first or not', async () => {
    const notRunning = (flowId: string) => `flow ${flowId} was not running when this execution arrived`;
    const notHere = (flowId: string) => `no flow ${flowId} in this tenant when the execution arrived (it was deleted, or never was)`;
    const cases = [
      { name: 'inactive', flowId: await createFlowRow(cp, user.tenantId, 'inactive'), reason: notRunning },
      { name: 'stopping', flowId: await createFlowRow(cp, user.tenantId, 'stopping'), reason: notRunning },
      { name: 'unknown', flowId: randomUUID(), reason: notHere },
      {
        name: 'another tenant’s',
        flowId: await createFlowRow(cp, (await createTenantWithUser(cp, ['TENANT_GUEST'])).tenantId),
        reason: notHere,
      },
    ];
    for (const { name, flowId, reason } of cases) {
      for (const resultsFirst of [true, false]) {
        const ref = executionRef(user.tenantId, flowId);
        const executed = executedPayload(ref);
        // The result starts after the call arrived: the record starts when the call arrived all the same.
        const startedAt = new Date(Date.parse(executed.receivedAt) + 500);
        if (resultsFirst) await applyResults(cp, stepResult(ref, 'a', 'd0', { delivered: ['d1'], startedAt }));
        await deliver(cp, executed);
        const record = await read(ref.flowExecId);
        const label = `${name}, results ${resultsFirst ? 'first' : 'later'}`;
        expect(record, label).toMatchObject({
          status: 'failed',
          reason: reason(flowId),
          trigger: 'webhook',
          input: executed.message,
          startedAt: executed.receivedAt,
          finishedAt: executed.receivedAt,
          durationMs: 0,
          steps: resultsFirst ? { a: { in: 1 } } : {},
        });
        expect(await trackedDeliveries(cp, ref.flowExecId), label).toEqual([]);
        expect(
          (await finishedOf(ref.flowExecId)).map((e) => e.payload.status),
          label,
        ).toEqual(['failed']);
      }
    }
    // A flow that is starting runs.
    const starting = executionRef(user.tenantId, await createFlowRow(cp, user.tenantId, 'starting'));
    await deliver(cp, executedPayload(starting));
    expect(await read(starting.flowExecId)).toMatchObject({ status: 'running' });
  });

  it(`keeps ${MAX_MESSAGES} outputs of a worker that reports more outputs than it counts`, async () => {
    const ref = await runningExecution(cp, user.tenantId);
    const executed = executedPayload(ref);
    await deliver(cp, executed);
    // Two batches of 60 results, each recording one output while it says it made none.
    for (const batch of [0, 1]) {
      const results = Array.from({ length: 60 }, (_, i) =>
        stepResult(ref, 'b', `b${batch}-${i}`, { outputs: [output(i)], outputCount: 0 }),
      );
      await applyResults(cp, ...results);
    }
    const record = await read(ref.flowExecId);
    expect(record.outputs).toHaveLength(MAX_MESSAGES);
    expect(record.dropped).toEqual({ outputs: 120 - MAX_MESSAGES, errors: 0 });
  });

  it(`keeps the newest ${MAX_MESSAGES} outputs and errors, counting the dropped ones, and caps payloads and error texts`, async () => {
    const ref = await runningExecution(cp, user.tenantId);
    const executed = executedPayload(ref, { blob: 'x'.repeat(MAX_PAYLOAD_BYTES) });
    await deliver(cp, executed);
    // a splits the input into 250 outputs (the first 100 recorded), b and c get some of them.
    const outputs = Array.from({ length: 100 }, (_, i) => output(i));
    await applyResults(cp, stepResult(ref, 'a', executed.message.id, { outputs, outputCount: 250, delivered: ['b0', 'b1', 'b2'] }));
    await applyResults(
      cp,
      stepResult(ref, 'b', 'b0', { outputs: [output('b0')] }),
      stepResult(ref, 'b', 'b1', { outputs: [output('b1')] }),
    );
    let record = await read(ref.flowExecId);
    expect(record.steps.a).toMatchObject({ in: 1, out: 250 });
    expect(record.outputs).toHaveLength(MAX_MESSAGES);
    expect(record.dropped).toEqual({ outputs: 2, errors: 0 });
    expect(record.outputs.map((o: { message: { data: unknown } }) => o.message.data)).toEqual([
      ...Array.from({ length: 98 }, (_, i) => i + 2),
      'b0',
      'b1',
    ]);

    // 105 failed inputs in one batch: the newest 100 are kept.
    const failures = Array.from({ length: MAX_MESSAGES + 5 }, (_, i) =>
      stepResult(ref, 'c', `c${i}`, { error: { message: `failure ${i}` }, input: { i } }),
    );
    failures[MAX_MESSAGES + 4] = stepResult(ref, 'c', `c${MAX_MESSAGES + 4}`, {
      error: { message: 'e'.repeat(MAX_ERROR_CHARS + 10), stack: 's'.repeat(MAX_ERROR_CHARS + 1) },
      input: { blob: 'y'.repeat(MAX_PAYLOAD_BYTES) },
    });
    await applyResults(cp, ...failures);
    record = await read(ref.flowExecId);
    expect(record.steps.c).toMatchObject({ in: MAX_MESSAGES + 5, out: 0, errors: MAX_MESSAGES + 5 });
    expect(record.errors).toHaveLength(MAX_MESSAGES);
    expect(record.dropped).toEqual({ outputs: 2, errors: 5 });
    expect(record.errors.map((e: { messageId: string }) => e.messageId)).toContain('c5');
    expect(record.errors.map((e: { messageId: string }) => e.messageId)).not.toContain('c4');
    const last = record.errors.find((e: { messageId: string }) => e.messageId === `c${MAX_MESSAGES + 4}`);
    expect(last.error.message).toBe(`${'e'.repeat(MAX_ERROR_CHARS)}… (10 more characters)`);
    expect(last.error.stack).toBe(`${'s'.repeat(MAX_ERROR_CHARS)}… (1 more characters)`);
    expect(last.input).toMatchObject({ truncated: true, bytes: expect.any(Number), preview: expect.stringContaining('"blob":"yyy') });
    expect(record.input).toEqual({ truncated: true, bytes: expect.any(Number), preview: expect.stringContaining('"blob":"xxx') });
    expect(record.input.bytes).toBeGreaterThan(MAX_PAYLOAD_BYTES);

    // Another batch of outputs pushes out the oldest ones, counted too.
    await applyResults(cp, stepResult(ref, 'b', 'b2', { outputs: [output('b2'), output('b2 again')] }));
    record = await read(ref.flowExecId);
    expect(record.outputs).toHaveLength(MAX_MESSAGES);
    expect(record.outputs.at(-1).message.data).toBe('b2 again');
    expect(record.dropped).toEqual({ outputs: 4, errors: 5 });
    expect(record.status).toBe('running'); // c's inputs were never delivered by a step
  });

  it('ignores results of an unknown tenant, or naming another tenant’s or flow’s execution, and applies the rest of their batch', async () => {
    const stranger = await createTenantWithUser(cp, ['TENANT_GUEST']);
    const ref = await runningExecution(cp, user.tenantId);
    const theirs = await runningExecution(cp, stranger.tenantId);
    const nowhere = executionRef('not-a-tenant');
    const executed = executedPayload(ref);
    await deliver(cp, executed);
    const event = await report(
      cp,
      stepResult({ ...ref, tenant: stranger.tenantId }, 'hijack', executed.message.id),
      stepResult({ ...ref, flowId: randomUUID() }, 'hijack', 'h2'),
      stepResult({ ...ref, tenant: randomUUID() }, 'hijack', 'h3'),
      stepResult(nowhere, 'hijack', 'h4'),
      { ...stepResult(ref, 'hijack', 'h5'), status: 'maybe' } as never,
      stepResult(ref, 'a', executed.message.id, { outputs: [output('ok')], delivered: ['d1'] }),
      stepResult(theirs, 'x', 'd0'),
    );
    await handled(cp, event);
    const record = await read(ref.flowExecId);
    expect(record).toMatchObject({ status: 'running', steps: { a: { in: 1, out: 1, errors: 0 } } });
    // A warning names the event, or (results applied with other batches) every event applied with it.
    const about = (message: string) =>
      warnings.filter((w) => (w.eventId === event.headers.id || w.eventIds?.includes(event.headers.id)) && w.msg.startsWith(message));
    const [ignored] = await waitFor(
      async () => about('step results ignored: their tenant'),
      (found) => found.length === 1,
    );
    expect(ignored).toMatchObject({ level: 40, ignored: 4 });
    expect(ignored!.results.map((r: { flowExecId: string }) => r.flowExecId).sort()).toEqual(
      [ref.flowExecId, ref.flowExecId, ref.flowExecId, nowhere.flowExecId].sort(),
    );
    expect(about('step results ignored: they do not match')).toEqual([
      expect.objectContaining({ level: 40, malformed: 1, results: [expect.objectContaining({ index: 4 })] }),
    ]);
    expect(Object.keys(record.steps)).toEqual(['a']);
    expect(await trackedDeliveries(cp, ref.flowExecId)).toEqual([{ deliveryId: 'd1', delivered: true, done: false }]);
    expect((await readExecution(cp, stranger.token, theirs.flowExecId)).steps).toEqual({ x: expect.objectContaining({ in: 1 }) });
    expect((await cp.request('GET', `/executions/${ref.flowExecId}`, { token: stranger.token })).status).toBe(404);
    expect((await cp.request('GET', `/executions/${nowhere.flowExecId}`, { token: await cp.login() })).status).toBe(404);

    // flow.executed naming another tenant is ignored too.
    await deliver(cp, { ...executedPayload(ref), tenant: stranger.tenantId });
    expect(await read(ref.flowExecId)).toMatchObject({ status: 'running', input: executed.message });
  });

  it('applies a batch of many executions and tenants in one go', async () => {
    const other = await createTenantWithUser(cp, ['TENANT_GUEST']);
    const tokenOf = (i: number) => (i % 2 === 0 ? user.token : other.token);
    const refs = await Promise.all(
      Array.from({ length: 20 }, (_, i) => runningExecution(cp, i % 2 === 0 ? user.tenantId : other.tenantId)),
    );
    const executed = refs.map((ref) => executedPayload(ref));
    // Every execution: a -> b, both results in one batch (b's first), before flow.executed.
    await applyResults(
      cp,
      ...refs.flatMap((ref, i) => [
        stepResult(ref, 'b', `d-${i}`, { outputs: [output(i)] }),
        stepResult(ref, 'a', executed[i]!.message.id, { outputs: [output(i)], delivered: [`d-${i}`] }),
      ]),
    );
    for (const [i, ref] of refs.entries())
      expect(await readExecution(cp, tokenOf(i), ref.flowExecId)).toMatchObject({
        status: 'running',
        steps: { a: { in: 1, out: 1 }, b: { in: 1, out: 1 } },
      });
    await deliver(cp, ...executed);
    for (const [i, ref] of refs.entries())
      expect(await readExecution(cp, tokenOf(i), ref.flowExecId)).toMatchObject({
        status: 'succeeded',
        tenant: i % 2 === 0 ? user.tenantId : other.tenantId,
      });
    const ended = await finished.settled();
    for (const ref of refs) expect(ended.filter((e) => e.payload.flowExecId === ref.flowExecId)).toHaveLength(1);
  });
});
