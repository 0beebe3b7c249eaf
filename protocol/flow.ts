import { Cron } from 'croner';
import { z } from 'zod';
import { scheduleSettingsSchema, webhookSettingsSchema } from './edge.js';
import {
  EXECUTION_MESSAGE_DEFAULTS,
  MAX_FLOW_EDGES,
  MAX_FLOW_STEPS,
  retrySettingsSchema,
  STEP_ID,
  STEP_ID_MESSAGE,
  stepSettingsSchema,
} from './fleet.js';

export const FLOW_STATUSES = ['inactive', 'starting', 'active', 'stopping'] as const;
export type FlowStatus = (typeof FLOW_STATUSES)[number];
export const FLOW_TYPES = ['ordinary', 'long_running'] as const;

const freeForm = z.record(z.string(), z.unknown());

export const flowNodeSchema = z.strictObject({
  id: z.string().min(1).max(30).regex(STEP_ID, STEP_ID_MESSAGE),
  componentId: z.string().min(1),
  function: z.string().min(1),
  name: z.string().max(200).optional(),
  description: z.string().max(1000).optional(),
  fields: freeForm.optional(),
  credentials_id: z.string().min(1).optional(),
  nodeSettings: stepSettingsSchema.optional(),
});

export const flowEdgeSchema = z.strictObject({
  id: z.string().min(1).max(30).optional(),
  source: z.string().min(1),
  target: z.string().min(1),
  config: z.strictObject({ condition: z.string().max(1000).optional(), mapper: z.unknown().optional() }).optional(),
});

export const flowGraphSchema = z.strictObject({
  nodes: z.array(flowNodeSchema).max(MAX_FLOW_STEPS, `a flow has at most ${MAX_FLOW_STEPS} nodes (each runs as a step worker of its own)`),
  edges: z.array(flowEdgeSchema).max(MAX_FLOW_EDGES, `a flow has at most ${MAX_FLOW_EDGES} edges`).default([]),
});

export const ownerSchema = z.strictObject({ id: z.string().min(1), type: z.enum(['user', 'tenant']) });
/** Who owns a flow, secret or domain: a user, or a whole tenant. */
export type Owner = z.infer<typeof ownerSchema>;

/** `flowSettings.webhooks` and `flowSettings.schedule` are read by the edge (protocol/edge.ts), `retry` by the runner fleet (protocol/fleet.ts). */
export const flowSettingsSchema = z.looseObject({
  webhooks: webhookSettingsSchema.optional(),
  schedule: scheduleSettingsSchema.optional(),
  retry: retrySettingsSchema.optional(),
  /** Messages one execution may make between its steps (the control plane's EXECUTION_MAX_MESSAGES caps it); past it, the execution fails. */
  maxMessages: z.number().int().min(1).max(EXECUTION_MESSAGE_DEFAULTS.ceiling).optional(),
  /** Outputs carry the data of every earlier step (`$passthrough`, as in elastic.io); off by default, so messages do not grow step by step. */
  passthrough: z.boolean().optional(),
});
export type FlowSettings = z.infer<typeof flowSettingsSchema>;

/** What a client may write. `status` is never among it. */
export const flowDefinitionFields = {
  name: z.string().trim().min(1).max(200),
  description: z.string().max(2000).nullable().optional(),
  type: z.enum(FLOW_TYPES).optional(),
  cron: z.string().trim().min(1).nullable().optional(),
  timezone: z.string().min(1).nullable().optional(),
  owners: z.array(ownerSchema).optional(),
  graph: flowGraphSchema,
  flowSettings: flowSettingsSchema.optional(),
};

export type FlowGraph = z.infer<typeof flowGraphSchema>;

/** Every broken graph rule, one message each (OIH validates the same rules). */
export function graphProblems(graph: FlowGraph): string[] {
  const problems: string[] = [];
  const ids = new Set<string>();
  if (graph.nodes.length === 0) problems.push('graph.nodes: a flow needs at least one node');
  for (const node of graph.nodes) {
    if (ids.has(node.id)) problems.push(`graph.nodes: node id "${node.id}" is used more than once`);
    ids.add(node.id);
  }
  if (graph.nodes.length > 1 && graph.edges.length === 0) {
    problems.push('graph.edges: a flow with several nodes needs edges between them');
  }
  graph.edges.forEach((edge, i) => {
    if (!ids.has(edge.source)) problems.push(`graph.edges[${i}].source: "${edge.source}" is not a node of this flow`);
    if (!ids.has(edge.target)) problems.push(`graph.edges[${i}].target: "${edge.target}" is not a node of this flow`);
  });
  if (problems.length === 0 && graph.nodes.length > 0) {
    const starts = firstNodes(graph);
    if (starts.length !== 1) {
      problems.push(
        starts.length === 0
          ? 'graph: every node is the target of an edge, so the flow has no first step'
          : `graph: a flow has exactly one first step (a node no edge targets), found ${starts.map((n) => `"${n}"`).join(', ')}`,
      );
    }
  }
  return problems;
}

/** The ids of the nodes no edge targets; a valid flow has exactly one. */
export function firstNodes(graph: FlowGraph): string[] {
  const targets = new Set(graph.edges.map((e) => e.target));
  return graph.nodes.filter((n) => !targets.has(n.id)).map((n) => n.id);
}

export function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

/** A message saying why `cron` (in `timezone`) cannot be scheduled, or null when it can. */
export function cronProblem(cron: string, timezone?: string | null): string | null {
  try {
    new Cron(cron, { paused: true, timezone: timezone ?? undefined });
    return null;
  } catch (error) {
    return `cron: "${cron}" is not a valid cron expression (${(error as Error).message})`;
  }
}

type Definition = { cron?: string | null; timezone?: string | null; graph: FlowGraph };

/** Adds one issue per broken rule of a whole flow definition to a zod refinement context. */
export function checkFlowRules(flow: Definition, ctx: z.RefinementCtx): void {
  for (const message of graphProblems(flow.graph)) ctx.addIssue({ code: 'custom', message, path: ['graph'] });
  if (flow.timezone != null && !isTimeZone(flow.timezone)) {
    ctx.addIssue({
      code: 'custom',
      path: ['timezone'],
      message: `timezone: "${flow.timezone}" is not an IANA time zone such as Europe/Berlin`,
    });
  } else if (flow.cron != null) {
    const problem = cronProblem(flow.cron, flow.timezone);
    if (problem) ctx.addIssue({ code: 'custom', path: ['cron'], message: problem });
  }
}

const STATUS_MESSAGE = 'status: cannot be set by clients; use POST /flows/{id}/start or /flows/{id}/stop';

/** The body of POST /flows. */
export const flowCreateSchema = z
  .strictObject({ ...flowDefinitionFields, status: z.unknown().optional() })
  .superRefine((flow, ctx) => {
    if (flow.status !== undefined) ctx.addIssue({ code: 'custom', path: ['status'], message: STATUS_MESSAGE });
    checkFlowRules(flow, ctx);
  })
  .transform(({ status: _status, ...flow }) => flow);

/** The body of PATCH /flows/{id}: any subset of the fields; the merged flow is checked with `flowCreateSchema`. */
export const flowPatchSchema = z
  .strictObject({ ...flowDefinitionFields, status: z.unknown().optional() })
  .partial()
  .superRefine((flow, ctx) => {
    if (flow.status !== undefined) ctx.addIssue({ code: 'custom', path: ['status'], message: STATUS_MESSAGE });
  })
  .transform(({ status: _status, ...flow }) => flow);

export type FlowCreate = z.output<typeof flowCreateSchema>;
export type FlowPatch = z.output<typeof flowPatchSchema>;

/** A flow as the control plane stores and returns it. */
export const flowSchema = z.object({
  id: z.string(),
  name: z.string(),
  description: z.string().nullable().optional(),
  status: z.enum(FLOW_STATUSES),
  statusReason: z.string().nullable().optional(),
  type: z.enum(FLOW_TYPES),
  cron: z.string().nullable().optional(),
  timezone: z.string().nullable().optional(),
  owners: z.array(ownerSchema),
  tenant: z.string(),
  graph: flowGraphSchema,
  flowSettings: flowSettingsSchema.nullable().optional(),
  startedBy: z.string().nullable().optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

export type Flow = z.infer<typeof flowSchema>;
