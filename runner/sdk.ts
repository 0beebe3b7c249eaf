/**
 * What a component is written against. A component is a Node module exporting named functions; a
 * flow node names one (`function`), and the step worker calls it once per input message:
 *
 *   export async function lookup(message, fields, context) {
 *     const customer = await crm.find(message.data.email, await context.credentials());
 *     if (!customer) return;                      // nothing to pass on
 *     return { id: customer.id };                 // the data of one output message
 *   }
 *
 * Returning a value (not undefined) emits it as the data of one output; `context.emit` emits any
 * number. Throwing fails the input: the error and the input are recorded on the execution.
 * `context.rebound(reason)` asks for the input to be tried again later, with backoff.
 */
import type { OutboundRequest } from '../protocol/outbound.js';
import type { StepMessage } from '../protocol/step-message.js';

export type { OutboundRequest, StepMessage };

export interface StepLogger {
  debug(message: string, details?: Record<string, unknown>): void;
  info(message: string, details?: Record<string, unknown>): void;
  warn(message: string, details?: Record<string, unknown>): void;
  error(message: string, details?: Record<string, unknown>): void;
}

/** What else an output carries besides its data. */
export interface OutputExtras {
  attachments?: Record<string, unknown>;
  headers?: Record<string, unknown>;
}

export interface StepContext {
  readonly flowId: string;
  readonly stepId: string;
  readonly flowExecId: string;
  readonly tenant: string;
  /** Which try of this input this is: 1 the first, more after rebounds. */
  readonly attempt: number;
  /** Aborted when the step's timeout passes or the worker is stopping: pass it to fetch and the like. */
  readonly signal: AbortSignal;
  /** Emits one output message with this data; it goes to every step the flow's edges lead to. */
  emit(data: unknown, extras?: OutputExtras): void;
  /** Gives the input back to be tried again after a delay (doubling each time), up to the step's maxAttempts; then it fails with `reason`. */
  rebound(reason: string): never;
  log: StepLogger;
  /** The step's credential (the secret its `credentials_id` names), decrypted; null when it names none. */
  credentials(): Promise<Record<string, unknown> | null>;
  /**
   * fetch for the step's own calls: it follows redirects itself (at most 5) and refuses loopback,
   * link-local and private addresses, after DNS and at every redirect, unless the operator allows
   * their network (OUTBOUND_ALLOWED_NETWORKS); a refusal rejects with an OutboundRefused cause.
   */
  fetch(url: URL | string, request?: OutboundRequest): Promise<Response>;
}

/** A component function. `fields` is the flow node's configuration. */
export type StepFunction = (message: StepMessage, fields: Record<string, unknown>, context: StepContext) => unknown;

/** Thrown by `context.rebound`: the worker retries the input instead of failing it. */
export class Rebound extends Error {
  override name = 'Rebound';
}
