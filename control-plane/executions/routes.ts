import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { guard, type AppEnv } from '../http/auth.js';
import { validationHook } from '../http/errors.js';
import { errors, json, notFoundError, security } from '../http/openapi.js';
import { page, pageMetaSchema, pagingQuery } from '../http/paging.js';
import { EXECUTION_STATUSES } from './schema.js';
import { MAX_RECORDED_PAYLOAD_BYTES } from '../../protocol/step-message.js';
import { getExecution, listExecutions } from './queries.js';
import { MAX_ERROR_CHARS, MAX_MESSAGES } from './records.js';

const dateTime = { format: 'date-time' } as const;
const payload = z
  .unknown()
  .openapi({ description: `As sent; when larger than ${MAX_RECORDED_PAYLOAD_BYTES} bytes of JSON, { truncated: true, bytes, preview }` });

const stepStats = z
  .object({
    in: z.number(),
    out: z.number(),
    errors: z.number(),
    firstAt: z.string().openapi(dateTime),
    lastAt: z.string().openapi(dateTime),
  })
  .openapi('ExecutionStep', {
    description:
      'in: inputs the step finished with (succeeded or failed); out: outputs it emitted; errors: inputs it failed (after any retries). firstAt: when its first input started; lastAt: when its last one ended',
  });

const summaryFields = {
  id: z.string(),
  flowExecId: z.string(),
  flowId: z.string(),
  tenant: z.string(),
  status: z.enum(EXECUTION_STATUSES).openapi({
    description:
      'running until every message of it was handled by its step (or its flow stopped); then failed if any step failed an input, else succeeded',
  }),
  reason: z
    .string()
    .nullable()
    .openapi({ description: 'Why it failed: the first failing step and its error, the flow stopped, or the flow was not running' }),
  trigger: z.enum(['webhook', 'schedule', 'manual']).nullable().openapi({ description: 'Null until flow.executed has arrived' }),
  startedAt: z.string().openapi({
    ...dateTime,
    description: 'When the edge received the call (until flow.executed arrives, when the first step result started)',
  }),
  recordedAt: z.string().openapi({
    ...dateTime,
    description:
      "When the control plane first recorded it: the edge's delivery of the call arrived (or a step's result, when that came first)",
  }),
  finishedAt: z
    .string()
    .nullable()
    .openapi({
      ...dateTime,
      description: 'When its last step result ended, or when it was failed (flow stopped or not running); null while running',
    }),
  durationMs: z.number().nullable(),
  steps: z.record(z.string(), stepStats).openapi({ description: 'Per step id' }),
};
const summary = z.object(summaryFields).openapi('ExecutionSummary');

const messageFields = {
  stepId: z.string(),
  messageId: z.string().nullable().openapi({ description: 'The id of the input (delivery) the step was working on' }),
  durationMs: z.number().nullable().openapi({ description: 'How long the step worked on that input' }),
  at: z.string().openapi({ ...dateTime, description: 'When the step finished with that input' }),
};
const execution = z
  .object({
    ...summaryFields,
    input: payload.openapi({ description: 'The first step’s input message' }),
    outputs: z
      .array(z.object({ ...messageFields, message: payload }))
      .openapi({ description: `The newest ${MAX_MESSAGES} output messages, oldest first` }),
    errors: z
      .array(
        z.object({
          ...messageFields,
          error: z.object({ message: z.string(), stack: z.string().optional() }),
          input: payload,
          attempts: z.number().nullable(),
        }),
      )
      .openapi({
        description: `The newest ${MAX_MESSAGES} errors with the input that caused each, oldest first; messages and stacks cut at ${MAX_ERROR_CHARS} characters`,
      }),
    dropped: z.object({ outputs: z.number(), errors: z.number() }).openapi({ description: 'How many fell off the capped lists' }),
  })
  .openapi('Execution');

const list = createRoute({
  method: 'get',
  path: '/',
  tags: ['executions'],
  summary: 'List the executions of your tenant’s flows',
  description: 'Newest first, without payloads (read one for those). Holders of `all` see every tenant’s.',
  security,
  middleware: guard('executions.read'),
  request: {
    query: z.strictObject({
      ...pagingQuery,
      'filter[flowId]': z.string().min(1).max(200).optional().openapi({ description: 'Only executions of this flow' }),
      'filter[status]': z.enum(EXECUTION_STATUSES).optional().openapi({ description: 'Only executions in this status' }),
    }),
  },
  responses: {
    200: json(z.object({ data: z.array(summary), meta: pageMetaSchema }).openapi('ExecutionList'), 'A page of executions'),
    ...errors,
  },
});

const read = createRoute({
  method: 'get',
  path: '/{id}',
  tags: ['executions'],
  summary: 'Read an execution, with its recent outputs and errors',
  security,
  middleware: guard('executions.read'),
  request: {
    params: z.object({
      id: z
        .string()
        .min(1)
        .max(200)
        .openapi({ param: { name: 'id', in: 'path' }, description: 'The flowExecId, or the record id' }),
    }),
  },
  responses: {
    200: json(z.object({ data: execution }).openapi('ExecutionResponse'), 'The execution'),
    ...errors,
    ...notFoundError('execution'),
  },
});

/** `/executions`: what each run of a flow did, step by step. */
export function executionRoutes() {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
    .openapi(list, async (c) => {
      const query = c.req.valid('query');
      const paging = page(query);
      const found = await listExecutions(c.get('services').db, c.get('principal'), {
        flowId: query['filter[flowId]'],
        status: query['filter[status]'],
        ...paging,
      });
      return c.json({ data: found.executions, meta: paging.meta(found.total) }, 200);
    })
    .openapi(read, async (c) =>
      c.json({ data: await getExecution(c.get('services').db, c.get('principal'), c.req.valid('param').id) }, 200),
    );
}
