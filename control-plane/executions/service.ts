import { and, asc, count, desc, eq, gt, inArray, or, sql, type SQL } from 'drizzle-orm';
import type { EventPayload, StepResult } from '../../protocol/events.js';
import type { FlowStatus } from '../../protocol/flow.js';
import { capPayload } from '../../protocol/step-message.js';
import { processedEvents } from '../bus/schema.js';
import { emit } from '../bus/outbox.js';
import { isUuid, type Database } from '../db/index.js';
import { flows } from '../flows/schema.js';
import { tenants } from '../iam/schema.js';
import { tenantScope } from '../http/auth.js';
import { notFound } from '../http/errors.js';
import type { Principal } from '../iam/tokens.js';
import { executionDeliveries, executionMessages, executions, type ExecutionStatus, type FirstError, type StepStats } from './schema.js';

export const SERVICE_NAME = 'executions';
/** The inbox consumer under which each step result's id is recorded, so a result reported twice applies once. */
export const RESULTS_CONSUMER = 'executions.results';

/** Outputs, and errors, an execution keeps: the newest of each; older ones are dropped and counted. */
export const MAX_MESSAGES = 100;
/** Error messages and stacks are cut to this many characters. */
export const MAX_ERROR_CHARS = 4000;
/** The error message a failure reason quotes is cut shorter, so the reason fits execution.finished (2000 characters). */
const MAX_REASON_MESSAGE_CHARS = 1500;
export const STOPPED_REASON = 'the flow was stopped before this execution finished';
export const notRunningReason = (flowId: string) => `flow ${flowId} was not running when this execution arrived`;

type ExecutionRow = typeof executions.$inferSelect;
type MessageRow = typeof executionMessages.$inferSelect;
type MessageInsert = typeof executionMessages.$inferInsert;
type ExecutionRef = { flowExecId: string; flowId: string; tenant: string };
/** What a batch says about one delivery of an execution. */
type DeliveryMarks = Map<string, { delivered: boolean; done: boolean }>;

const cut = (text: string, max = MAX_ERROR_CHARS) =>
  text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`;

/** Rows (or ids) per statement, well under PostgreSQL's 65535 parameters. */
const CHUNK = 4000;
async function chunked<T>(items: T[], run: (chunk: T[]) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += CHUNK) await run(items.slice(i, i + CHUNK));
}

/** The known tenants among `ids` (ids that are not uuids name no tenant). */
async function knownTenants(tx: Database, ids: Iterable<string>): Promise<Set<string>> {
  const candidates = [...new Set(ids)].filter(isUuid);
  if (candidates.length === 0) return new Set();
  const rows = await tx.select({ id: tenants.id }).from(tenants).where(inArray(tenants.id, candidates));
  return new Set(rows.map((r) => r.id));
}

/**
 * The record of `ref.flowExecId`, created by whichever of its events comes first, and locked until
 * the transaction ends so that events of one execution apply one at a time. Null when the event
 * names no known tenant, or another tenant or flow than the record's: it is not applied.
 */
async function lockRecord(tx: Database, ref: ExecutionRef, at: Date, tenantKnown = false): Promise<ExecutionRow | null> {
  if (!tenantKnown && !(await knownTenants(tx, [ref.tenant])).has(ref.tenant)) return null;
  await tx
    .insert(executions)
    .values({ flowExecId: ref.flowExecId, flowId: ref.flowId, tenantId: ref.tenant, startedAt: at })
    .onConflictDoNothing({ target: executions.flowExecId });
  const [row] = await tx.select().from(executions).where(eq(executions.flowExecId, ref.flowExecId)).for('update');
  return row && row.tenantId === ref.tenant && row.flowId === ref.flowId ? row : null;
}

/**
 * Applies what a batch says about running executions' deliveries (`marks`, per execution id):
 * merged with what was tracked, a delivery both delivered and done is deleted, the others are
 * kept. Returns the executions that still have a delivery open. The executions must be locked.
 */
async function track(tx: Database, marks: Map<string, DeliveryMarks>): Promise<Set<string>> {
  const keys: { e: string; d: string }[] = [];
  for (const [executionId, deliveries] of marks) for (const deliveryId of deliveries.keys()) keys.push({ e: executionId, d: deliveryId });
  if (keys.length === 0) return new Set();
  // One parameter, however many deliveries: the keys as a JSON array of { e, d }.
  const tracked = await tx
    .delete(executionDeliveries)
    .where(
      sql`(${executionDeliveries.executionId}, ${executionDeliveries.deliveryId}) in (select k.e, k.d from jsonb_to_recordset(${JSON.stringify(keys)}::jsonb) as k(e uuid, d text))`,
    )
    .returning();
  for (const row of tracked) {
    const mark = marks.get(row.executionId)!.get(row.deliveryId)!;
    mark.delivered ||= row.delivered;
    mark.done ||= row.done;
  }
  const open: (typeof executionDeliveries.$inferInsert)[] = [];
  for (const [executionId, deliveries] of marks) {
    for (const [deliveryId, mark] of deliveries) if (!(mark.delivered && mark.done)) open.push({ executionId, deliveryId, ...mark });
  }
  await chunked(open, (chunk) => tx.insert(executionDeliveries).values(chunk));
  const pending = new Set(open.map((d) => d.executionId));
  const unsure = [...marks.keys()].filter((id) => !pending.has(id));
  if (unsure.length > 0) {
    const rows = await tx
      .selectDistinct({ executionId: executionDeliveries.executionId })
      .from(executionDeliveries)
      .where(inArray(executionDeliveries.executionId, unsure));
    for (const row of rows) pending.add(row.executionId);
  }
  return pending;
}

const totalErrors = (steps: Record<string, StepStats>) => Object.values(steps).reduce((sum, step) => sum + step.errors, 0);

/** The end of an execution all of whose deliveries have a result: failed if any step failed an input, naming the first. */
function outcome(
  steps: Record<string, StepStats>,
  firstError: FirstError | null,
): { status: 'succeeded' | 'failed'; reason: string | null } {
  if (!firstError) return { status: 'succeeded', reason: null };
  const errors = totalErrors(steps);
  const more = errors > 1 ? ` (${errors} inputs failed in all)` : '';
  return { status: 'failed', reason: `step ${firstError.stepId} failed: ${cut(firstError.message, MAX_REASON_MESSAGE_CHARS)}${more}` };
}

/** When the last result of the execution ended (not before it started). */
function lastResultEnd(row: Pick<ExecutionRow, 'steps' | 'startedAt'>): Date {
  const ends = Object.values(row.steps).map((step) => Date.parse(step.lastAt));
  return new Date(Math.max(row.startedAt.getTime(), ...ends));
}

async function emitFinished(tx: Database, row: ExecutionRow, status: 'succeeded' | 'failed', reason: string | null): Promise<void> {
  await emit(tx, SERVICE_NAME, 'execution.finished', {
    flowExecId: row.flowExecId,
    flowId: row.flowId,
    tenant: row.tenantId,
    status,
    ...(reason === null ? {} : { reason }),
  });
}

/** The status of the tenant's flow, or null when it has no such flow. */
async function flowStatus(tx: Database, flowId: string, tenant: string): Promise<FlowStatus | null> {
  if (!isUuid(flowId) || !isUuid(tenant)) return null;
  const [flow] = await tx
    .select({ status: flows.status })
    .from(flows)
    .where(and(eq(flows.id, flowId), eq(flows.tenantId, tenant)));
  return flow?.status ?? null;
}

export type Applied = { applied: boolean; finished: number };

/**
 * flow.executed: the trigger, the input and startedAt; the first step's input (the message) is
 * delivered, which ends the execution when every other delivery already has its result. A flow
 * that is not running fails it at once. A second flow.executed of one flowExecId changes nothing.
 */
export async function recordExecuted(tx: Database, payload: EventPayload<'flow.executed'>): Promise<Applied> {
  const receivedAt = new Date(payload.receivedAt);
  const status = await flowStatus(tx, payload.flowId, payload.tenant);
  // A flow of the tenant proves the tenant exists.
  const row = await lockRecord(tx, payload, receivedAt, status !== null);
  if (!row) return { applied: false, finished: 0 };
  if (row.trigger !== null) return { applied: true, finished: 0 };
  const changes = { trigger: payload.trigger, input: capPayload(payload.message), startedAt: receivedAt };
  if (row.status === 'running' && status !== 'starting' && status !== 'active') {
    const reason = notRunningReason(payload.flowId);
    await tx
      .update(executions)
      .set({ ...changes, status: 'failed', reason, finishedAt: receivedAt, updatedAt: new Date() })
      .where(eq(executions.id, row.id));
    await tx.delete(executionDeliveries).where(eq(executionDeliveries.executionId, row.id));
    await emitFinished(tx, row, 'failed', reason);
    return { applied: true, finished: 1 };
  }
  let ended: { status: 'succeeded' | 'failed'; reason: string | null; finishedAt: Date } | null = null;
  if (row.status === 'running') {
    const pending = await track(tx, new Map([[row.id, new Map([[payload.message.id, { delivered: true, done: false }]])]]));
    if (!pending.has(row.id))
      ended = { ...outcome(row.steps, row.firstError), finishedAt: lastResultEnd({ steps: row.steps, startedAt: receivedAt }) };
  }
  await tx
    .update(executions)
    .set({ ...changes, ...ended, updatedAt: new Date() })
    .where(eq(executions.id, row.id));
  if (!ended) return { applied: true, finished: 0 };
  await emitFinished(tx, row, ended.status, ended.reason);
  return { applied: true, finished: 1 };
}

/** What an execution the edge delivered may say of itself, checked or not. */
export interface RefusedExecution {
  flowExecId: string;
  flowId: string;
  tenant: string;
  receivedAt: Date;
  trigger: 'webhook' | 'schedule' | 'manual' | null;
  message: unknown;
}

/**
 * An execution the edge delivered that can never run (malformed, or its flow is not in its
 * tenant): recorded as failed with the reason, once, so that the 202 its caller got leads to a
 * record. Nothing when it names no known tenant, or when its record exists already.
 */
export async function recordRefused(tx: Database, refused: RefusedExecution, reason: string): Promise<boolean> {
  const row = await lockRecord(tx, refused, refused.receivedAt);
  if (row?.status !== 'running' || row.trigger !== null) return false;
  const why = cut(reason, MAX_REASON_MESSAGE_CHARS);
  await tx
    .update(executions)
    .set({
      status: 'failed',
      reason: why,
      trigger: refused.trigger,
      input: refused.message === undefined ? null : capPayload(refused.message),
      finishedAt: refused.receivedAt,
      updatedAt: new Date(),
    })
    .where(eq(executions.id, row.id));
  await tx.delete(executionDeliveries).where(eq(executionDeliveries.executionId, row.id));
  await emitFinished(tx, row, 'failed', why);
  return true;
}

/** flow.stopped: every running execution of the flow fails (finishedAt: the event's time). Returns how many. */
export async function recordFlowStopped(tx: Database, payload: EventPayload<'flow.stopped'>, at: Date): Promise<number> {
  if (!isUuid(payload.tenant)) return 0;
  // Locked in flowExecId order, as a batch of results locks them.
  const running = await tx
    .select()
    .from(executions)
    .where(and(eq(executions.flowId, payload.id), eq(executions.tenantId, payload.tenant), eq(executions.status, 'running')))
    .orderBy(asc(executions.flowExecId))
    .for('update');
  await chunked(
    running.map((row) => row.id),
    async (ids) => {
      await tx
        .update(executions)
        .set({
          status: 'failed',
          reason: STOPPED_REASON,
          finishedAt: sql`greatest(${at.toISOString()}::timestamptz, ${executions.startedAt})`,
          updatedAt: new Date(),
        })
        .where(inArray(executions.id, ids));
      await tx.delete(executionDeliveries).where(inArray(executionDeliveries.executionId, ids));
    },
  );
  for (const row of running) await emitFinished(tx, row, 'failed', STOPPED_REASON);
  return running.length;
}

/** What a failed result without an error is recorded with. */
const NO_ERROR_MESSAGE = 'the step failed without saying why';

/** A result with its start and end as ISO strings (comparable as strings). */
type Timed = StepResult & { start: string; end: string };

/** Everything a batch changes on one execution record. */
interface RecordChange {
  row: ExecutionRow;
  results: Timed[];
  steps: Record<string, StepStats>;
  startedAt: Date;
  firstError: FirstError | null;
  droppedOutputs: number;
  droppedErrors: number;
  ended: { status: 'succeeded' | 'failed'; reason: string | null; finishedAt: Date } | null;
}

/** Counts one result more in `steps` (own properties only: a step may be called `__proto__`). */
function counted(steps: Record<string, StepStats>, result: Timed): void {
  const step = Object.hasOwn(steps, result.stepId)
    ? steps[result.stepId]!
    : { in: 0, out: 0, errors: 0, firstAt: result.start, lastAt: result.end };
  const value: StepStats = {
    in: step.in + 1,
    out: step.out + result.outputCount,
    errors: step.errors + (result.status === 'failed' ? 1 : 0),
    // ISO timestamps of one format compare as text (Math.min would turn them into NaN).
    // biome-ignore lint/complexity/useMathMinMax: strings, not numbers
    firstAt: step.firstAt < result.start ? step.firstAt : result.start,
    // biome-ignore lint/complexity/useMathMinMax: strings, not numbers
    lastAt: step.lastAt > result.end ? step.lastAt : result.end,
  };
  Object.defineProperty(steps, result.stepId, { value, enumerable: true, writable: true, configurable: true });
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

/**
 * execution.step.results: applies each result not applied before (its id recorded in the inbox
 * under RESULTS_CONSUMER), all in the caller's transaction, each record locked once: counters,
 * outputs, errors, deliveries; an execution whose deliveries all have a result ends, and
 * execution.finished is emitted. Returns the results ignored (unknown tenant, another tenant's or
 * flow's record) and how many executions ended.
 */
export async function recordResults(tx: Database, batch: StepResult[]): Promise<{ ignored: StepResult[]; finished: number }> {
  const unique = new Map<string, StepResult>();
  for (const result of batch) if (!unique.has(result.id)) unique.set(result.id, result);
  const ids = [...unique.keys()].sort();
  const fresh = new Set<string>();
  await chunked(ids, async (chunk) => {
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
  if (results.length === 0) return { ignored: [], finished: 0 };

  // One record per flowExecId, created by the first result of a known tenant when it does not exist yet.
  const known = await knownTenants(
    tx,
    results.map((r) => r.tenant),
  );
  const ignored: StepResult[] = results.filter((r) => !known.has(r.tenant));
  const creating = new Map<string, typeof executions.$inferInsert>();
  for (const r of results) {
    if (!known.has(r.tenant)) continue;
    const record = creating.get(r.flowExecId);
    if (!record)
      creating.set(r.flowExecId, { flowExecId: r.flowExecId, flowId: r.flowId, tenantId: r.tenant, startedAt: new Date(r.start) });
    else if (record.tenantId === r.tenant && record.flowId === r.flowId && record.startedAt.getTime() > Date.parse(r.start))
      record.startedAt = new Date(r.start);
  }
  if (creating.size === 0) return { ignored, finished: 0 };
  // Sorted, so that batches sharing executions take their locks in one order.
  const flowExecIds = [...creating.keys()].sort();
  await chunked(
    flowExecIds.map((id) => creating.get(id)!),
    (chunk) => tx.insert(executions).values(chunk).onConflictDoNothing({ target: executions.flowExecId }),
  );
  const rows = await tx
    .select()
    .from(executions)
    .where(inArray(executions.flowExecId, flowExecIds))
    .orderBy(asc(executions.flowExecId))
    .for('update');

  const changes = new Map<string, RecordChange>();
  const byExecId = new Map(rows.map((row) => [row.flowExecId, row]));
  for (const r of results) {
    if (!known.has(r.tenant)) continue;
    const row = byExecId.get(r.flowExecId);
    if (!row || row.tenantId !== r.tenant || row.flowId !== r.flowId) {
      ignored.push(r);
      continue;
    }
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
    change.results.push(r);
    counted(change.steps, r);
    // Until flow.executed has set it, startedAt is the earliest result's start.
    if (row.trigger === null && Date.parse(r.start) < change.startedAt.getTime()) change.startedAt = new Date(r.start);
    if (r.status === 'failed' && (!change.firstError || r.end < change.firstError.at)) {
      change.firstError = { stepId: r.stepId, message: r.error?.message ?? NO_ERROR_MESSAGE, at: r.end };
    }
  }
  if (changes.size === 0) return { ignored, finished: 0 };

  // Outputs and errors: one insert, then one delete of the oldest beyond the caps.
  const messages = [...changes.values()].flatMap(messagesOf);
  await chunked(messages, (chunk) => tx.insert(executionMessages).values(chunk));
  const withMessages = new Set(messages.map((m) => m.executionId));
  await trim(tx, new Map([...changes].filter(([id]) => withMessages.has(id))));

  // Deliveries of running executions; one with none open (and flow.executed arrived) ends.
  const marks = new Map<string, DeliveryMarks>();
  for (const change of changes.values()) {
    if (change.row.status !== 'running') continue;
    const deliveries: DeliveryMarks = new Map();
    const mark = (id: string, what: 'delivered' | 'done') => {
      const entry = deliveries.get(id) ?? { delivered: false, done: false };
      entry[what] = true;
      deliveries.set(id, entry);
    };
    for (const r of change.results) {
      mark(r.deliveryId, 'done');
      for (const id of r.delivered) mark(id, 'delivered');
    }
    marks.set(change.row.id, deliveries);
  }
  const pending = await track(tx, marks);
  for (const id of marks.keys()) {
    const change = changes.get(id)!;
    if (change.row.trigger === null || pending.has(id)) continue;
    change.ended = {
      ...outcome(change.steps, change.firstError),
      finishedAt: lastResultEnd({ steps: change.steps, startedAt: change.startedAt }),
    };
  }

  // Every record in one update.
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

  let finished = 0;
  for (const change of changes.values()) {
    if (!change.ended) continue;
    await emitFinished(tx, change.row, change.ended.status, change.ended.reason);
    finished++;
  }
  return { ignored, finished };
}

export interface ExecutionSummary {
  id: string;
  flowExecId: string;
  flowId: string;
  tenant: string;
  status: ExecutionStatus;
  reason: string | null;
  trigger: ExecutionRow['trigger'];
  startedAt: string;
  finishedAt: string | null;
  durationMs: number | null;
  steps: Record<string, StepStats>;
}

export interface StepOutput {
  stepId: string;
  messageId: string | null;
  message: unknown;
  durationMs: number | null;
  at: string;
}

export interface StepError {
  stepId: string;
  messageId: string | null;
  error: { message: string; stack?: string };
  input: unknown;
  attempts: number | null;
  durationMs: number | null;
  at: string;
}

export interface Execution extends ExecutionSummary {
  input: unknown;
  outputs: StepOutput[];
  errors: StepError[];
  dropped: { outputs: number; errors: number };
}

const toSummary = (row: ExecutionRow): ExecutionSummary => ({
  id: row.id,
  flowExecId: row.flowExecId,
  flowId: row.flowId,
  tenant: row.tenantId,
  status: row.status,
  reason: row.reason,
  trigger: row.trigger,
  startedAt: row.startedAt.toISOString(),
  finishedAt: row.finishedAt?.toISOString() ?? null,
  durationMs: row.finishedAt ? row.finishedAt.getTime() - row.startedAt.getTime() : null,
  steps: row.steps,
});

const common = (m: MessageRow) => ({ stepId: m.stepId, messageId: m.messageId, durationMs: m.durationMs, at: m.at.toISOString() });

export async function listExecutions(
  db: Database,
  principal: Principal,
  query: { flowId?: string; status?: ExecutionStatus; limit: number; offset: number },
): Promise<{ executions: ExecutionSummary[]; total: number }> {
  const scope = tenantScope(principal);
  const where = and(
    scope === null ? undefined : eq(executions.tenantId, scope),
    query.flowId === undefined ? undefined : eq(executions.flowId, query.flowId),
    query.status === undefined ? undefined : eq(executions.status, query.status),
  );
  const [rows, [total]] = await Promise.all([
    db
      .select()
      .from(executions)
      .where(where)
      .orderBy(desc(executions.startedAt), desc(executions.id))
      .limit(query.limit)
      .offset(query.offset),
    db.select({ total: count() }).from(executions).where(where),
  ]);
  return { executions: rows.map(toSummary), total: total?.total ?? 0 };
}

/** By flowExecId or record id; another tenant's is a 404. */
export async function getExecution(db: Database, principal: Principal, ref: string): Promise<Execution> {
  const scope = tenantScope(principal);
  const matches: SQL | undefined = isUuid(ref)
    ? or(eq(executions.flowExecId, ref), eq(executions.id, ref))
    : eq(executions.flowExecId, ref);
  const [row] = await db
    .select()
    .from(executions)
    .where(and(matches, scope === null ? undefined : eq(executions.tenantId, scope)))
    .limit(1);
  if (!row) throw notFound(`No execution ${ref} that you may see`);
  const messages = await db
    .select()
    .from(executionMessages)
    .where(eq(executionMessages.executionId, row.id))
    .orderBy(asc(executionMessages.at), asc(executionMessages.seq));
  return {
    ...toSummary(row),
    input: row.input,
    outputs: messages.filter((m) => m.kind === 'output').map((m) => ({ ...common(m), message: m.message })),
    errors: messages
      .filter((m) => m.kind === 'error')
      .map((m) => ({ ...common(m), error: m.error!, input: m.message, attempts: m.attempts })),
    dropped: { outputs: row.droppedOutputs, errors: row.droppedErrors },
  };
}
