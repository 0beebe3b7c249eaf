/**
 * The deliveries of a running execution: every message handed to a step (flow.executed's to the
 * first, each output to each target). The execution is over once each is both delivered and done
 * (a result with it as its `deliveryId`), in whichever order the events saying so arrive.
 */
import { inArray, sql } from 'drizzle-orm';
import type { StepResult } from '../../protocol/events.js';
import type { Database } from '../db/index.js';
import { chunked } from './records.js';
import { executionDeliveries } from './schema.js';

/** What events say about the deliveries of one execution, by delivery id. */
export type DeliveryMarks = Map<string, { delivered: boolean; done: boolean }>;

/** What results say: each one's own delivery is done, and those it made (`delivered`) are delivered. */
export function marksOf(results: Pick<StepResult, 'deliveryId' | 'delivered'>[]): DeliveryMarks {
  const marks: DeliveryMarks = new Map();
  const mark = (id: string, what: 'delivered' | 'done') => {
    const entry = marks.get(id) ?? { delivered: false, done: false };
    entry[what] = true;
    marks.set(id, entry);
  };
  for (const r of results) {
    mark(r.deliveryId, 'done');
    for (const id of r.delivered) mark(id, 'delivered');
  }
  return marks;
}

/**
 * Applies what a batch says about running executions' deliveries (`marks`, per execution id):
 * merged with what was tracked, a delivery both delivered and done is deleted, the others are
 * kept. Returns the executions that still have a delivery open. The executions must be locked.
 */
export async function trackDeliveries(tx: Database, marks: Map<string, DeliveryMarks>): Promise<Set<string>> {
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
