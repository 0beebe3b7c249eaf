import { and, eq, lt } from 'drizzle-orm';
import { processedEvents } from './bus/schema.js';
import type { Database } from './db/index.js';
import { tokens } from './iam/schema.js';
import type { Logger } from './logger.js';

const DAY_MS = 24 * 60 * 60 * 1000;
/** Expired login sessions are kept a day, so a "token has expired" answer stays accurate meanwhile. */
const SESSION_GRACE_MS = DAY_MS;
/** A broker redelivers within minutes; a week of handled event ids is far more than any redelivery needs. */
const PROCESSED_EVENTS_RETENTION_MS = 7 * DAY_MS;
const EVERY_MS = 60 * 60 * 1000;

/** Deletes rows that only grow: expired login sessions and old handled-event records. */
export async function purgeExpired(db: Database, now = new Date()): Promise<{ sessions: number; processedEvents: number }> {
  const sessions = await db
    .delete(tokens)
    .where(and(eq(tokens.kind, 'session'), lt(tokens.expiresAt, new Date(now.getTime() - SESSION_GRACE_MS))))
    .returning({ id: tokens.id });
  const handled = await db
    .delete(processedEvents)
    .where(lt(processedEvents.processedAt, new Date(now.getTime() - PROCESSED_EVENTS_RETENTION_MS)))
    .returning({ id: processedEvents.eventId });
  return { sessions: sessions.length, processedEvents: handled.length };
}

/** Runs `purgeExpired` at start and hourly; returns the function that stops it. */
export function startJanitor(db: Database, logger: Logger): () => void {
  const run = () =>
    purgeExpired(db).then(
      (purged) => logger[purged.sessions + purged.processedEvents > 0 ? 'info' : 'debug'](purged, 'janitor purged expired rows'),
      (error: unknown) => logger.warn({ err: error }, 'janitor failed; it tries again in an hour'),
    );
  void run();
  const timer = setInterval(run, EVERY_MS);
  timer.unref();
  return () => clearInterval(timer);
}
