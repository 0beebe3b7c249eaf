import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditRecords } from '../control-plane/audit/schema.js';
import { processedEvents } from '../control-plane/bus/schema.js';
import { edgeExecutions } from '../control-plane/edge/schema.js';
import { executions } from '../control-plane/executions/schema.js';
import { tokens, users } from '../control-plane/iam/schema.js';
import { purgeExpired } from '../control-plane/janitor.js';
import { stepLogs } from '../control-plane/runners/schema.js';
import { startTestControlPlane, type TestControlPlane } from './support/control-plane.js';

const HOUR = 60 * 60 * 1000;

describe('the janitor', () => {
  let cp: TestControlPlane;
  beforeAll(async () => {
    cp = await startTestControlPlane();
  });
  afterAll(() => cp.close());

  it('deletes sessions expired over a day ago, handled-event records over a week old and edge execution ids and execution records over a month old, audit records and step logs past their retention, and nothing newer', async () => {
    const { db } = cp.services;
    const [admin] = await db.select().from(users);
    const now = new Date();
    const ago = (ms: number) => new Date(now.getTime() - ms);
    const [old, recent, service] = await db
      .insert(tokens)
      .values([
        { kind: 'session', userId: admin!.id, expiresAt: ago(25 * HOUR) },
        { kind: 'session', userId: admin!.id, expiresAt: ago(HOUR) },
        { kind: 'service', userId: admin!.id, expiresAt: ago(30 * 24 * HOUR), secretHash: 'x' },
      ])
      .returning({ id: tokens.id });
    await db.insert(processedEvents).values([
      { consumer: 'janitor-test', eventId: 'old', processedAt: ago(8 * 24 * HOUR) },
      { consumer: 'janitor-test', eventId: 'recent', processedAt: ago(6 * 24 * HOUR) },
    ]);

    await db.insert(edgeExecutions).values([
      { flowExecId: 'old-exec', flowId: randomUUID(), receivedAt: ago(31 * 24 * HOUR), createdAt: ago(31 * 24 * HOUR) },
      { flowExecId: 'recent-exec', flowId: randomUUID(), receivedAt: ago(HOUR), createdAt: ago(HOUR) },
    ]);

    await db.insert(executions).values([
      { flowExecId: 'old-record', flowId: randomUUID(), tenantId: admin!.tenantId!, startedAt: ago(31 * 24 * HOUR) },
      { flowExecId: 'recent-record', flowId: randomUUID(), tenantId: admin!.tenantId!, startedAt: ago(HOUR) },
    ]);

    const headers = (id: string) => ({ id, name: 'audit.test', createdAt: now.toISOString(), serviceName: 'janitor-test' });
    await db.insert(auditRecords).values([
      {
        eventId: 'old-audit',
        name: 'audit.test',
        serviceName: 'janitor-test',
        headers: headers('old-audit'),
        payload: {},
        createdAt: ago(400 * 24 * HOUR),
        receivedAt: ago(400 * 24 * HOUR),
      },
      {
        eventId: 'recent-audit',
        name: 'audit.test',
        serviceName: 'janitor-test',
        headers: headers('recent-audit'),
        payload: {},
        createdAt: ago(HOUR),
        receivedAt: ago(HOUR),
      },
    ]);
    const logLine = (line: string, at: Date) => ({
      flowId: randomUUID(),
      tenantId: admin!.tenantId!,
      stepId: 'map',
      at,
      stream: 'stdout' as const,
      line,
    });
    await db.insert(stepLogs).values([logLine('old-line', ago(8 * 24 * HOUR)), logLine('recent-line', ago(HOUR))]);
    expect(
      (await purgeExpired(db, { auditRetentionDays: 0, stepLogRetentionDays: 7 }, new Date(now.getTime() - 365 * 24 * HOUR))).auditRecords,
    ).toBe(0);

    const purged = await purgeExpired(db, { auditRetentionDays: 365, stepLogRetentionDays: 7 }, now);

    expect(purged).toEqual({ sessions: 1, processedEvents: 1, edgeExecutions: 1, executions: 1, auditRecords: 1, stepLogs: 1 });
    expect((await db.select().from(stepLogs)).map((l) => l.line)).toEqual(['recent-line']);
    expect((await db.select().from(auditRecords)).map((r) => r.eventId)).not.toContain('old-audit');
    expect((await db.select().from(auditRecords)).map((r) => r.eventId)).toContain('recent-audit');
    expect((await db.select().from(executions)).map((e) => e.flowExecId)).toEqual(['recent-record']);
    expect((await db.select().from(edgeExecutions)).map((e) => e.flowExecId)).toEqual(['recent-exec']);
    const left = (await db.select({ id: tokens.id }).from(tokens)).map((t) => t.id);
    expect(left).not.toContain(old!.id);
    expect(left).toEqual(expect.arrayContaining([recent!.id, service!.id]));
    const handled = await db.select().from(processedEvents).where(eq(processedEvents.consumer, 'janitor-test'));
    expect(handled.map((e) => e.eventId)).toEqual(['recent']);
  });
});
