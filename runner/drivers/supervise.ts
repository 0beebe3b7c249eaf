import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { backoff } from '../../protocol/backoff.js';
import { workerName, type WorkerExit, type WorkerKey, type WorkerObserver } from './types.js';

/** The restart backoff: doubling from 1 s to 30 s; a worker up for a minute has recovered, and its next crash waits 1 s again. */
export const RESTART_BACKOFF = { firstMs: 1000, maxMs: 30_000 };
const HEALTHY_AFTER_MS = 60_000;

/** A worker as a driver runs it: one run after the other. */
export interface Runs {
  /** Waits for the current run to end: how it ended, or null when the worker was stopped or let go. */
  ended(): Promise<WorkerExit | null>;
  /** Starts it again; throws when it cannot (reported as a crash, and tried again after the next delay). */
  restart(): Promise<void>;
}

/**
 * Both drivers' supervision: each run that ends by itself is reported (`crashed`) and the worker
 * started again after the restart backoff, until `stopped` aborts (stop, or the driver lets go).
 */
export async function supervise(key: WorkerKey, runs: Runs, observer: WorkerObserver, logger: Logger, stopped: AbortSignal): Promise<void> {
  const worker = workerName(key);
  const pause = async (ms: number) => {
    await sleep(ms, undefined, { signal: stopped }).catch(() => {});
    return !stopped.aborted;
  };
  let failures = 0;
  try {
    for (;;) {
      const began = Date.now();
      const exit = await runs.ended();
      if (!exit || stopped.aborted) return;
      if (Date.now() - began > HEALTHY_AFTER_MS) failures = 0;
      let delay = backoff(++failures, RESTART_BACKOFF);
      logger.warn({ worker, code: exit.code, signal: exit.signal, restartInMs: delay }, 'step worker exited; starting it again');
      observer.crashed(exit);
      for (;;) {
        if (!(await pause(delay))) return;
        try {
          await runs.restart();
          break;
        } catch (error) {
          if (stopped.aborted) return;
          delay = backoff(++failures, RESTART_BACKOFF);
          const reason = error instanceof Error ? error.message : String(error);
          logger.warn({ worker, err: reason, restartInMs: delay }, 'cannot start the step worker again');
          observer.crashed({ code: null, signal: null, output: `cannot start it again: ${reason}` });
        }
      }
    }
  } catch (error) {
    logger.error({ worker, err: error instanceof Error ? error.message : String(error) }, 'step worker supervision failed');
  }
}
