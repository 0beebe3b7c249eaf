import { randomUUID } from 'node:crypto';
import { OutboundPolicy } from '../../protocol/outbound.js';
import { outboundFetch } from '../../runner/outbound.js';
import { Rebound, type OutputExtras, type StepContext, type StepFunction, type StepMessage } from '../../runner/sdk.js';

/** A step message with defaults for what the test leaves out. */
export const message = (overrides: Partial<StepMessage> = {}): StepMessage => ({
  id: randomUUID(),
  data: {},
  attachments: {},
  headers: {},
  metadata: {},
  passthrough: {},
  ...overrides,
});

export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
  details?: Record<string, unknown>;
}

/**
 * A StepContext as a step worker gives it, recording what the function emits and logs; its fetch
 * is the worker's, allowing only the private networks given (none by default, as a runner).
 */
export function stepContext(
  options: { credentials?: Record<string, unknown> | null; signal?: AbortSignal; allowedNetworks?: string[] } = {},
) {
  const outputs: { data: unknown; extras: OutputExtras | undefined }[] = [];
  const logs: LogLine[] = [];
  const line = (level: LogLine['level']) => (text: string, details?: Record<string, unknown>) =>
    void logs.push({ level, message: text, ...(details ? { details } : {}) });
  const context: StepContext = {
    flowId: 'flow-1',
    stepId: 'step-1',
    flowExecId: randomUUID(),
    tenant: randomUUID(),
    attempt: 1,
    signal: options.signal ?? new AbortController().signal,
    emit: (data, extras) => void outputs.push({ data, extras }),
    rebound: (reason) => {
      throw new Rebound(reason);
    },
    log: { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') },
    credentials: async () => options.credentials ?? null,
    fetch: outboundFetch(new OutboundPolicy(options.allowedNetworks)),
  };
  return { context, outputs, logs };
}

/** Calls a component function as the step worker does: a returned value (not undefined) is one more output. */
export async function run(
  fn: StepFunction,
  input: StepMessage,
  fields: Record<string, unknown> = {},
  options: Parameters<typeof stepContext>[0] = {},
) {
  const recorded = stepContext(options);
  const returned = await fn(input, fields, recorded.context);
  if (returned !== undefined) recorded.outputs.push({ data: returned, extras: undefined });
  return recorded;
}
