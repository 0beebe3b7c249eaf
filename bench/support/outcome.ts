import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import type { Calls } from './callers.js';

/** An execution as the control plane's database holds it (times in epoch ms). */
export interface ExecutionRow {
  flowExecId: string;
  status: 'running' | 'succeeded' | 'failed';
  startedAt: number;
  finishedAt: number | null;
  /** The most inputs any one step recorded: more than 1 means a step ran the call twice. */
  mostInputs: number;
}

export async function executionsOf(db: pg.Pool, flowId: string): Promise<ExecutionRow[]> {
  const { rows } = await db.query(
    `select flow_exec_id, status, extract(epoch from started_at) * 1000 as started, extract(epoch from finished_at) * 1000 as finished,
            (select coalesce(max((value->>'in')::int), 0) from jsonb_each(steps)) as most
       from executions where flow_id = $1`,
    [flowId],
  );
  return rows.map((row) => ({
    flowExecId: row.flow_exec_id,
    status: row.status,
    startedAt: Number(row.started),
    finishedAt: row.finished === null ? null : Number(row.finished),
    mostInputs: Number(row.most),
  }));
}

/** Waits until every accepted call's execution has finished (succeeded or failed), or `limitMs` passed; resolves with how long it waited. */
export async function drained(db: pg.Pool, calls: Calls, limitMs: number): Promise<{ ms: number; complete: boolean }> {
  const begun = Date.now();
  const ids = [...calls.accepted.keys()];
  for (;;) {
    const finished = await db
      .query(`select count(*)::int as n from executions where flow_exec_id = any($1) and status <> 'running'`, [ids])
      .then(
        (r) => r.rows[0].n as number,
        () => -1,
      );
    if (finished >= ids.length) return { ms: Date.now() - begun, complete: true };
    if (Date.now() - begun > limitMs) return { ms: Date.now() - begun, complete: false };
    await sleep(500);
  }
}

export interface Outcome {
  accepted: number;
  refused: number;
  /** Accepted calls with no finished execution. */
  missing: number;
  /** Executions in which a step took its input more than once. */
  duplicated: number;
  failed: number;
  /** Executions of calls the callers did not see accepted (the edge took them but its answer was lost). */
  unanswered: number;
  /** Longest call → execution finished, of the accepted calls (ms). */
  slowestMs: number;
}

export function outcome(calls: Calls, rows: ExecutionRow[]): Outcome {
  const byId = new Map(rows.map((row) => [row.flowExecId, row]));
  let missing = 0;
  let failed = 0;
  let slowestMs = 0;
  for (const [id, sentAt] of calls.accepted) {
    const row = byId.get(id);
    if (!row || row.finishedAt === null) missing++;
    else {
      if (row.status === 'failed') failed++;
      slowestMs = Math.max(slowestMs, row.finishedAt - sentAt);
    }
  }
  return {
    accepted: calls.accepted.size,
    refused: calls.refused,
    missing,
    duplicated: rows.filter((row) => row.mostInputs > 1).length,
    failed,
    unanswered: rows.filter((row) => !calls.accepted.has(row.flowExecId)).length,
    slowestMs,
  };
}

/**
 * From the failed part being back (`backAt`) to executions completing again: the first execution
 * the edge received since the fault began (`faultAt`) that finished at or after `backAt`.
 */
export function recoveryMs(rows: ExecutionRow[], faultAt: number, backAt: number): number | undefined {
  const resumed = rows
    .filter((row) => row.startedAt >= faultAt && row.finishedAt !== null && row.finishedAt >= backAt)
    .map((row) => row.finishedAt!);
  return resumed.length ? Math.min(...resumed) - backAt : undefined;
}

/** From the failed part being back (`backAt`) until every execution the edge had received by then finished: the backlog caught up. */
export function caughtUpMs(rows: ExecutionRow[], backAt: number): number | undefined {
  const before = rows.filter((row) => row.startedAt < backAt);
  if (before.some((row) => row.finishedAt === null)) return undefined;
  return Math.max(0, ...before.map((row) => row.finishedAt! - backAt));
}
