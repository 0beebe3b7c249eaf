/**
 * execution.step.results: what the step workers report of each input, applied to the execution
 * records in batches, each record locked once per batch.
 */
import { asc, gt, inArray, sql } from 'drizzle-orm';
import type { StepResult } from '../../protocol/events.js';
import { capPayload } from '../../protocol/step-message.js';
import { processedEvents } from '../bus/schema.js';
import type { Database } from '../db/index.js';
import { marksOf, trackDeliveries, type DeliveryMarks } from './deliveries.js';
import { emitFinished, ending, type Ending } from './finish.js';
import { chunked, cut, knownTenants, MAX_MESSAGES, RESULTS_CONSUMER, type ExecutionRow } from './records.js';
import { executionMessages, executions, type FirstError, type StepStats } from './schema.js';

/** What a failed result without an error is recorded with. */
const NO_ERROR_MESSAGE = 'the step failed without saying why';

/** A result with its start and end as ISO strings (comparable as strings). */
type Timed = StepResult & { start: string; end: string };
type MessageInsert = typeof executionMessages.$inferInsert;

/** Everything a batch changes on one execution record. */
interface RecordChange {
  row: ExecutionRow;
  results: Timed[];
  steps: Record<string, StepStats>;
  startedAt: Date;
  firstError: FirstError | null;
  droppedOutputs: number;
  droppedErrors: number;
  ended: Ending | null;
}

/**
 * Applies each result not applied before (its id recorded in the inbox under RESULTS_CONSUMER), all
 * in the caller's transaction: counters, outputs, errors, deliveries; an execution whose deliveries
 * all have a result ends, and execution.finished is emitted. Returns the results ignored (unknown
 * tenant, another tenant's or flow's record).
 */
export async function recordResults(tx: Database, batch: StepResult[]): Promise<{ ignored: StepResult[] }> {
  const results = await unapplied(tx, batch);
  const records = await lockRecordsOf(tx, results);
  const ignored: StepResult[] = [];
  const changes = new Map<string, RecordChange>();
  for (const r of results) {
    const row = records.get(r.flowExecId);
    if (row && row.tenantId === r.tenant && row.flowId === r.flowId) count(changeOf(changes, row), r);
    else ignored.push(r);
  }
  await keepMessages(tx, changes);
  await endCompleted(tx, changes);
  await save(tx, changes);
  await emitEnded(tx, changes);
  return { ignored };
}

/** The batch's results whose ids the inbox did not hold yet (now it does), once each, with their start and end. */
async function unapplied(tx: Database, batch: StepResult[]): Promise<Timed[]> {
  const unique = new Map<string, StepResult>();
  for (const result of batch) if (!unique.has(result.id)) unique.set(result.id, result);
  const fresh = new Set<string>();
  await chunked([...unique.keys()].sort(), async (chunk) => {
    const rows = await tx
      .insert(processedEvents)
      .values(chunk.map((eventId) => ({ consumer: RESULTS_CONSUMER, eventId })))
      .onConflictDoNothing()
      .returning({ eventId: processedEvents.eventId });
    for (const row of rows) fresh.add(row.eventId);
  });
  const results: Timed[] = [];
  for (const result of unique.values()) {
    if (!fresh.has(result.id)) continue;
    const start = new Date(result.startedAt);
    results.push({ ...result, start: start.toISOString(), end: new Date(start.getTime() + result.durationMs).toISOString() });
  }
  return results;
}

/**
 * The records the results are about, locked in flowExecId order (so that batches sharing executions
 * take their locks in one order). The edge's delivery makes a record before any step runs; should
 * results come first all the same, they make it, when their tenant exists, starting at the earliest.
 */
async function lockRecordsOf(tx: Database, results: Timed[]): Promise<Map<string, ExecutionRow>> {
  const lock = async (ids: string[]) =>
    ids.length === 0
      ? []
      : tx.select().from(executions).where(inArray(executions.flowExecId, ids)).orderBy(asc(executions.flowExecId)).for('update');
  const records = new Map((await lock([...new Set(results.map((r) => r.flowExecId))].sort())).map((row) => [row.flowExecId, row]));
  const missing = results.filter((r) => !records.has(r.flowExecId));
  if (missing.length === 0) return records;
  const known = await knownTenants(
    tx,
    missing.map((r) => r.tenant),
  );
  const creating = new Map<string, typeof executions.$inferInsert>();
  for (const r of missing) {
    if (!known.has(r.tenant)) continue;
    const record = creating.get(r.flowExecId);
    if (!record)
      creating.set(r.flowExecId, { flowExecId: r.flowExecId, flowId: r.flowId, tenantId: r.tenant, startedAt: new Date(r.start) });
    else if (record.tenantId === r.tenant && record.flowId === r.flowId && record.startedAt.getTime() > Date.parse(r.start))
      record.startedAt = new Date(r.start);
  }
  const flowExecIds = [...creating.keys()].sort();
  await chunked(
    flowExecIds.map((id) => creating.get(id)!),
    (chunk) => tx.insert(executions).values(chunk).onConflictDoNothing({ target: executions.flowExecId }),
  );
  for (const row of await lock(flowExecIds)) records.set(row.flowExecId, row);
  return records;
}

/** What the batch changes on `row`, begun from the row as it is. */
function changeOf(changes: Map<string, RecordChange>, row: ExecutionRow): RecordChange {
  let change = changes.get(row.id);
  if (!change) {
    change = {
      row,
      results: [],
      steps: { ...row.steps },
      startedAt: row.startedAt,
      firstError: row.firstError,
      droppedOutputs: row.droppedOutputs,
      droppedErrors: row.droppedErrors,
      ended: null,
    };
    changes.set(row.id, change);
  }
  return change;
}

/** Counts `r` in its record's change: its step's counters, the execution's start and its first error. */
function count(change: RecordChange, r: Timed): void {
  change.results.push(r);
  countStep(change.steps, r);
  // Until flow.executed has set it, startedAt is the earliest result's start.
  if (change.row.trigger === null && Date.parse(r.start) < change.startedAt.getTime()) change.startedAt = new Date(r.start);
  if (r.status === 'failed' && (!change.firstError || r.end < change.firstError.at)) {
    change.firstError = { stepId: r.stepId, message: r.error?.message ?? NO_ERROR_MESSAGE, at: r.end };
  }
}

/** Counts one result more in `steps` (own properties only: a step may be called `__proto__`). */
function countStep(steps: Record<string, StepStats>, result: Timed): void {
  const step = Object.hasOwn(steps, result.stepId)
    ? steps[result.stepId]!
    : { in: 0, out: 0, errors: 0, firstAt: result.start, lastAt: result.end };
  const value: StepStats = {
    in: step.in + 1,
    // Never fewer than the outputs it recorded: the count bounds the rows kept (see mayOverflow).
    out: step.out + Math.max(result.outputCount, result.outputs.length),
    errors: step.errors + (result.status === 'failed' ? 1 : 0),
    // ISO timestamps of one format compare as text (Math.min would turn them into NaN).
    // biome-ignore lint/complexity/useMathMinMax: strings, not numbers
    firstAt: step.firstAt < result.start ? step.firstAt : result.start,
    // biome-ignore lint/complexity/useMathMinMax: strings, not numbers
    lastAt: step.lastAt > result.end ? step.lastAt : result.end,
  };
  Object.defineProperty(steps, result.stepId, { value, enumerable: true, writable: true, configurable: true });
}

/** Outputs and errors: one insert, then one delete of the oldest beyond the caps. */
async function keepMessages(tx: Database, changes: Map<string, RecordChange>): Promise<void> {
  const messages = [...changes.values()].flatMap(messagesOf);
  await chunked(messages, (chunk) => tx.insert(executionMessages).values(chunk));
  const withMessages = new Set(messages.map((m) => m.executionId));
  await trim(tx, new Map([...changes].filter(([id, change]) => withMessages.has(id) && mayOverflow(change.steps))));
}

/** Whether an execution may keep more outputs or errors than MAX_MESSAGES: its counters bound what it stored. */
function mayOverflow(steps: Record<string, StepStats>): boolean {
  const all = Object.values(steps);
  return all.reduce((sum, step) => sum + step.out, 0) > MAX_MESSAGES || all.reduce((sum, step) => sum + step.errors, 0) > MAX_MESSAGES;
}

/** The outputs and errors of `change`'s results as rows, the newest MAX_MESSAGES of each kind; the others are counted as dropped. */
function messagesOf(change: RecordChange): MessageInsert[] {
  const outputs: MessageInsert[] = [];
  const errors: MessageInsert[] = [];
  const executionId = change.row.id;
  for (const r of change.results) {
    const common = { executionId, stepId: r.stepId, messageId: r.deliveryId, durationMs: r.durationMs, at: new Date(r.end) };
    for (const message of r.outputs) outputs.push({ ...common, kind: 'output', message: capPayload(message) });
    if (r.status === 'failed') {
      const error = r.error ?? { message: NO_ERROR_MESSAGE };
      errors.push({
        ...common,
        kind: 'error',
        message: capPayload(r.input),
        error: { message: cut(error.message), ...(error.stack === undefined ? {} : { stack: cut(error.stack) }) },
        attempts: r.attempts,
      });
    }
  }
  change.droppedOutputs += Math.max(0, outputs.length - MAX_MESSAGES);
  change.droppedErrors += Math.max(0, errors.length - MAX_MESSAGES);
  return [...outputs.slice(-MAX_MESSAGES), ...errors.slice(-MAX_MESSAGES)];
}

/** Deletes the oldest outputs and errors beyond MAX_MESSAGES of each kind of the executions, counting them as dropped. */
async function trim(tx: Database, changes: Map<string, RecordChange>): Promise<void> {
  if (changes.size === 0) return;
  const ranked = tx
    .select({
      seq: executionMessages.seq,
      n: sql<number>`row_number() over (partition by ${executionMessages.executionId}, ${executionMessages.kind} order by ${executionMessages.seq} desc)`.as(
        'n',
      ),
    })
    .from(executionMessages)
    .where(inArray(executionMessages.executionId, [...changes.keys()]))
    .as('ranked');
  const gone = await tx
    .delete(executionMessages)
    .where(inArray(executionMessages.seq, tx.select({ seq: ranked.seq }).from(ranked).where(gt(ranked.n, MAX_MESSAGES))))
    .returning({ executionId: executionMessages.executionId, kind: executionMessages.kind });
  for (const m of gone) {
    const change = changes.get(m.executionId)!;
    if (m.kind === 'output') change.droppedOutputs++;
    else change.droppedErrors++;
  }
}

/** Tracks the deliveries of running executions; one with none open ends, once flow.executed has arrived. */
async function endCompleted(tx: Database, changes: Map<string, RecordChange>): Promise<void> {
  const marks = new Map<string, DeliveryMarks>();
  for (const change of changes.values()) if (change.row.status === 'running') marks.set(change.row.id, marksOf(change.results));
  const open = await trackDeliveries(tx, marks);
  for (const id of marks.keys()) {
    const change = changes.get(id)!;
    if (change.row.trigger === null || open.has(id)) continue;
    change.ended = ending(change.steps, change.firstError, change.startedAt);
  }
}

/** Writes every changed record in one update. */
async function save(tx: Database, changes: Map<string, RecordChange>): Promise<void> {
  if (changes.size === 0) return;
  const values = [...changes.values()].map((c) => ({
    id: c.row.id,
    steps: c.steps,
    started_at: c.startedAt.toISOString(),
    first_error: c.firstError,
    dropped_outputs: c.droppedOutputs,
    dropped_errors: c.droppedErrors,
    status: c.ended?.status ?? c.row.status,
    reason: c.ended ? c.ended.reason : c.row.reason,
    finished_at: (c.ended?.finishedAt ?? c.row.finishedAt)?.toISOString() ?? null,
  }));
  await tx
    .update(executions)
    .set({
      steps: sql`v.steps`,
      startedAt: sql`v.started_at`,
      firstError: sql`v.first_error`,
      droppedOutputs: sql`v.dropped_outputs`,
      droppedErrors: sql`v.dropped_errors`,
      status: sql`v.status`,
      reason: sql`v.reason`,
      finishedAt: sql`v.finished_at`,
      updatedAt: sql`now()`,
    })
    .from(
      sql`jsonb_to_recordset(${JSON.stringify(values)}::jsonb) as v(id uuid, steps jsonb, started_at timestamptz, first_error jsonb, dropped_outputs integer, dropped_errors integer, status text, reason text, finished_at timestamptz)`,
    )
    .where(sql`${executions.id} = v.id`);
}

/** execution.finished for each execution that ended. */
async function emitEnded(tx: Database, changes: Map<string, RecordChange>): Promise<void> {
  await emitFinished(
    tx,
    [...changes.values()].flatMap((change) => (change.ended ? [{ row: change.row, ending: change.ended }] : [])),
  );
}
