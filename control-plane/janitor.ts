import { and, eq, lt } from 'drizzle-orm';
import { auditRecords } from './audit/schema.js';
import { processedEvents } from './bus/schema.js';
import type { Database } from './db/index.js';
import { edgeExecutions } from './edge/schema.js';
import { executions } from './executions/schema.js';
import { tokens } from './iam/schema.js';
import { stepLogs } from './runners/schema.js';
import type { Logger } from './logger.js';

const DAY_MS = 24 * 60 * 60 * 1000;
/** Expired login sessions are kept a day, so a "token has expired" answer stays accurate meanwhile. */
const SESSION_GRACE_MS = DAY_MS;
/** A broker redelivers within minutes; a week of handled event ids is far more than any redelivery needs. */
const PROCESSED_EVENTS_RETENTION_MS = 7 * DAY_MS;
/** The edge retries a batch until it is answered; a month covers any outage it could outlast. */
const EDGE_EXECUTIONS_RETENTION_MS = 30 * DAY_MS;
/** Execution records (and their step messages) are kept for a month after they started. */
const EXECUTIONS_RETENTION_MS = 30 * DAY_MS;
const EVERY_MS = 60 * 60 * 1000;

/** Deletes rows that only grow: expired login sessions, old handled-event records, old edge execution ids, old execution records, audit records past AUDIT_RETENTION_DAYS and step logs past STEP_LOG_RETENTION_DAYS. */
export async function purgeExpired(
  db: Database,
  options: { auditRetentionDays: number; stepLogRetentionDays: number },
  now = new Date(),
): Promise<{
  sessions: number;
  processedEvents: number;
  edgeExecutions: number;
  executions: number;
  auditRecords: number;
  stepLogs: number;
}> {
  const sessions = await db
    .delete(tokens)
    .where(and(eq(tokens.kind, 'session'), lt(tokens.expiresAt, new Date(now.getTime() - SESSION_GRACE_MS))))
    .returning({ id: tokens.id });
  const handled = await db
    .delete(processedEvents)
    .where(lt(processedEvents.processedAt, new Date(now.getTime() - PROCESSED_EVENTS_RETENTION_MS)))
    .returning({ id: processedEvents.eventId });
  const edge = await db
    .delete(edgeExecutions)
    .where(lt(edgeExecutions.createdAt, new Date(now.getTime() - EDGE_EXECUTIONS_RETENTION_MS)))
    .returning({ id: edgeExecutions.flowExecId });
  const records = await db
    .delete(executions)
    .where(lt(executions.startedAt, new Date(now.getTime() - EXECUTIONS_RETENTION_MS)))
    .returning({ id: executions.id });
  const audit =
    options.auditRetentionDays > 0
      ? await db
          .delete(auditRecords)
          .where(lt(auditRecords.receivedAt, new Date(now.getTime() - options.auditRetentionDays * DAY_MS)))
          .returning({ id: auditRecords.id })
      : [];
  const logs = await db
    .delete(stepLogs)
    .where(lt(stepLogs.at, new Date(now.getTime() - options.stepLogRetentionDays * DAY_MS)))
    .returning({ seq: stepLogs.seq });
  return {
    sessions: sessions.length,
    processedEvents: handled.length,
    edgeExecutions: edge.length,
    executions: records.length,
    auditRecords: audit.length,
    stepLogs: logs.length,
  };
}

/** Runs `purgeExpired` at start and hourly; returns the function that stops it. */
export function startJanitor(
  db: Database,
  logger: Logger,
  options: { auditRetentionDays: number; stepLogRetentionDays: number },
): () => void {
  const run = () =>
    purgeExpired(db, options).then(
      (purged) => logger[Object.values(purged).some((n) => n > 0) ? 'info' : 'debug'](purged, 'janitor purged expired rows'),
      (error: unknown) => logger.warn({ err: error }, 'janitor failed; it tries again in an hour'),
    );
  void run();
  const timer = setInterval(run, EVERY_MS);
  timer.unref();
  return () => clearInterval(timer);
}
