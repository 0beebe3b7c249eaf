import { asc, inArray, sql } from 'drizzle-orm';
import { backoff } from '../../protocol/backoff.js';
import type { Database } from '../db/index.js';
import type { Logger } from '../logger.js';
import { outbox } from './schema.js';
import type { EventBus } from './types.js';

export interface RelayOptions {
  batchSize?: number;
  /** How often the outbox is polled when nobody kicks the relay. */
  pollMs?: number;
  /** Longest wait between attempts while the bus or the database is down (2 s: publishing resumes soon after). */
  maxBackoffMs?: number;
}

/**
 * Publishes outbox rows in order and deletes them once the bus confirmed them. Rows are claimed
 * with FOR UPDATE SKIP LOCKED, so several control-plane replicas can run a relay side by side.
 * While the bus is down nothing is deleted; the relay backs off and tries again.
 */
export class OutboxRelay {
  private running = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  /** A kick that came while a batch was being published: it may have missed that batch, so the loop goes again at once. */
  private kicked = false;
  private failures = 0;

  constructor(
    private readonly db: Database,
    private readonly bus: EventBus,
    private readonly logger: Logger,
    private readonly options: RelayOptions = {},
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Publish now rather than at the next poll (called after a transaction that emitted events). */
  kick(): void {
    this.kicked = true;
    this.wake?.();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.kick();
    await this.loop;
  }

  /** Publishes one batch; returns how many events went out. */
  async publishBatch(): Promise<number> {
    const batchSize = this.options.batchSize ?? 100;
    // The failure is thrown only after the transaction committed, so the attempt count it records stays.
    const outcome = await this.db.transaction(async (tx) => {
      const rows = await tx.select().from(outbox).orderBy(asc(outbox.seq)).limit(batchSize).for('update', { skipLocked: true });
      const seqs = rows.map((r) => r.seq);
      if (rows.length === 0) return { sent: 0 };
      try {
        await Promise.all(rows.map((row) => this.bus.publish(row.envelope)));
      } catch (error) {
        await tx
          .update(outbox)
          .set({ attempts: sql`${outbox.attempts} + 1`, lastError: String((error as Error).message) })
          .where(inArray(outbox.seq, seqs));
        return { failure: error };
      }
      await tx.delete(outbox).where(inArray(outbox.seq, seqs));
      return { sent: rows.length };
    });
    if ('failure' in outcome) throw outcome.failure;
    return outcome.sent;
  }

  private async run(): Promise<void> {
    const pollMs = this.options.pollMs ?? 250;
    const maxBackoffMs = this.options.maxBackoffMs ?? 2_000;
    while (this.running) {
      let wait = pollMs;
      this.kicked = false;
      try {
        const sent = await this.publishBatch();
        if (this.failures > 0) this.logger.info({ after: this.failures }, 'outbox relay: publishing again');
        this.failures = 0;
        if (sent === (this.options.batchSize ?? 100) || this.kicked) continue;
      } catch (error) {
        this.failures++;
        wait = backoff(this.failures, { firstMs: pollMs, maxMs: maxBackoffMs, jitter: 0.2 });
        const log = { err: error, attempt: this.failures, retryInMs: wait };
        if (this.failures === 1) this.logger.warn(log, 'outbox relay: cannot publish; events stay in the outbox');
        else this.logger.debug(log, 'outbox relay: still cannot publish');
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
  }
}
