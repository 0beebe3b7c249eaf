import { asc, inArray, sql } from 'drizzle-orm';
import { backoff } from '../../protocol/backoff.js';
import type { Database } from '../db/index.js';
import type { Logger } from '../logger.js';
import { outbox } from './schema.js';
import type { EventBus } from './types.js';

/** Batches published at once: the next goes out while the one before waits for its confirms. */
const IN_FLIGHT = 3;

export interface RelayOptions {
  batchSize?: number;
  /** How often the outbox is polled when nobody kicks the relay. */
  pollMs?: number;
  /** Longest wait between attempts while the bus or the database is down (2 s: publishing resumes soon after). */
  maxBackoffMs?: number;
}

/**
 * Publishes outbox rows in order and deletes them once the bus confirmed them (out of order only
 * when a batch fails while a later one, already sent, succeeds). Rows are claimed
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
    /** The bus, or what routes some events elsewhere first (runners/entry.ts). */
    private readonly outlet: Pick<EventBus, 'publish'>,
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

  private get batchSize(): number {
    return this.options.batchSize ?? 100;
  }

  /** Publishes one batch; returns how many events went out. */
  publishBatch(): Promise<number> {
    return this.batch().done;
  }

  /**
   * Claims the oldest rows, publishes them and deletes them once the bus confirmed them, in one
   * transaction. `sent` settles once every publish went out (before the confirms): a bus sends an
   * event when `publish` is called (EventBus), so the next batch, begun then, goes out after this one.
   */
  private batch(): { sent: Promise<number>; done: Promise<number> } {
    let markSent!: (count: number) => void;
    const sent = new Promise<number>((resolve) => (markSent = resolve));
    const done = (async () => {
      // The failure is thrown only after the transaction committed, so the attempt count it records stays.
      const outcome = await this.db.transaction(async (tx) => {
        const rows = await tx.select().from(outbox).orderBy(asc(outbox.seq)).limit(this.batchSize).for('update', { skipLocked: true });
        const seqs = rows.map((r) => r.seq);
        if (rows.length === 0) return { sent: 0 };
        const confirmed = Promise.all(rows.map((row) => this.outlet.publish(row.envelope)));
        markSent(rows.length);
        try {
          await confirmed;
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
    })();
    // Nothing was sent when the batch failed before publishing, or found no rows.
    done.then(markSent, () => markSent(0));
    return { sent, done };
  }

  /**
   * Up to IN_FLIGHT batches at once: the next is begun as soon as the one before was sent, while
   * that one waits for its confirms, so a kicked event does not wait out another batch's confirm
   * round trip. A batch that fails stops new ones; once those in flight settle, the relay backs off.
   */
  private async run(): Promise<void> {
    const pollMs = this.options.pollMs ?? 250;
    const maxBackoffMs = this.options.maxBackoffMs ?? 2_000;
    const inFlight = new Set<Promise<void>>();
    while (this.running) {
      this.kicked = false;
      const { sent, done } = this.batch();
      const settled = done.then(
        () => {
          if (this.failures > 0) this.logger.info({ after: this.failures }, 'outbox relay: publishing again');
          this.failures = 0;
        },
        (error: unknown) => {
          this.failures++;
          const log = { err: error, attempt: this.failures };
          if (this.failures === 1) this.logger.warn(log, 'outbox relay: cannot publish; events stay in the outbox');
          else this.logger.debug(log, 'outbox relay: still cannot publish');
        },
      );
      inFlight.add(settled);
      void settled.then(() => inFlight.delete(settled));
      const count = await sent;
      // More waiting (a full batch), or a kick since this batch began: the next batch now, beside those in flight.
      if (this.failures === 0 && ((count > 0 && count === this.batchSize) || this.kicked)) {
        if (inFlight.size >= IN_FLIGHT) await Promise.race(inFlight);
        continue;
      }
      if (this.failures > 0) {
        await Promise.all(inFlight);
        if (this.failures > 0) await this.sleep(backoff(this.failures, { firstMs: pollMs, maxMs: maxBackoffMs, jitter: 0.2 }));
        continue;
      }
      // Nothing more now: until a kick or the poll. The batches in flight settle meanwhile; a kick
      // does not wait for their confirms (it did, adding a confirm round trip to an event emitted then).
      await this.sleep(pollMs);
    }
    await Promise.all(inFlight);
  }

  /** Waits `ms`, or less when kicked. */
  private async sleep(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wake = null;
  }
}
