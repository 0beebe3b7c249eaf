import type Docker from 'dockerode';
import { TAIL_LINES } from './exit.js';
import { containerName, keyOf } from './spec.js';
import type { RunStart } from './worker.js';

/** The containers a runner's earlier run left, in the order to adopt them: of two of one key, the one of the driver's own name, else the oldest. */
export function adoptionOrder<C extends Pick<Docker.ContainerInfo, 'Labels' | 'Names' | 'Created'>>(found: C[], runnerName: string): C[] {
  const canonical = (summary: C) => {
    const key = keyOf(summary.Labels);
    return key && (summary.Names ?? []).includes(`/${containerName(runnerName, key)}`) ? 0 : 1;
  };
  return [...found].sort((a, b) => canonical(a) - canonical(b) || a.Created - b.Created);
}

/**
 * Where an adopted container's output is read from: a running one from the end of its last run
 * (its readiness then may be before the adoption), one that is not running its last lines (the end
 * of the run the crash report quotes). Lines before `adoptedAt` were shipped by the earlier run.
 */
export function adoptedRunStart(state: { Running: boolean; FinishedAt: string }, adoptedAt: Date): RunStart {
  return state.Running ? { since: state.FinishedAt, adoptedAt, readyBefore: true } : { tail: TAIL_LINES, adoptedAt, readyBefore: false };
}
