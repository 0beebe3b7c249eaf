import { z } from 'zod';
import { ownerSchema } from './flow.js';

export const COMPONENT_ACCESS = ['public', 'private'] as const;
export const FUNCTION_KINDS = ['trigger', 'action'] as const;

/** A Docker image reference: [registry[:port]/]path[:tag][@sha256:digest], path in lower case. */
const IMAGE =
  /^(?:[a-zA-Z0-9.-]+(?::\d+)?\/)?[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*(?::\w[\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;

/** How a component's `module` names a built-in: `hookline:http`. Only the platform's seeded components use it. */
export const BUILTIN_MODULE_PREFIX = 'hookline:';

/** A path segment of a module: no `%` (a URL parser would decode `%2e%2e` into `..`), no backslash, no `:`. */
const MODULE_SEGMENT = /^[\w.~+-]+$/;

/**
 * Why `module` is not a module a component may name, or null: a package name (`crm`,
 * `@acme/crm`, with a subpath `@acme/crm/actions.js`) or a path relative to the runner's trusted
 * folders (`./crm/index.mjs`). Refused: URLs of any scheme (`data:`, `file:`, `node:`, `http:`,
 * and the built-ins' `hookline:`, which only the platform seeds), absolute paths and `.`/`..`
 * segments, so a module never names code outside what the runner's operator trusts.
 */
export function moduleProblem(module: string): string | null {
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(module);
  if (scheme) return `must be a package name or a relative path (./...), not a URL: ${scheme[1]}: modules are refused`;
  if (module.startsWith('/') || module.startsWith('\\'))
    return 'must be a package name or a relative path (./...), not an absolute path: a runner resolves it inside the folders its operator trusts';
  const segments = module.split('/');
  const relative = segments[0] === '.';
  const rest = relative ? segments.slice(1) : segments;
  if (!relative && rest[0]?.startsWith('@')) {
    if (rest.length < 2) return 'must name a package of the scope: @scope/name';
    rest[0] = rest[0].slice(1);
  }
  if (rest.some((segment) => segment === '.' || segment === '..'))
    return 'may not have . or .. segments: a path stays inside the folders the runner trusts';
  if (rest.length === 0 || !rest.every((segment) => MODULE_SEGMENT.test(segment))) {
    return 'must be a package name (@acme/crm, @acme/crm/actions.js) or a relative path (./crm/index.mjs): letters, digits, . _ - ~ + between slashes';
  }
  return null;
}

/** The package a valid module names (`@acme/crm` of `@acme/crm/actions.js`), or null for a relative path. */
export function packageOf(module: string): string | null {
  if (module.startsWith('./')) return null;
  const segments = module.split('/');
  return segments.slice(0, segments[0]!.startsWith('@') ? 2 : 1).join('/');
}

/** One function a component's module exports; the step worker calls it by this name. */
export const componentFunctionSchema = z.strictObject({
  name: z
    .string()
    .min(1)
    .max(100)
    .regex(/^[A-Za-z_$][\w$]*$/, 'must be a JavaScript identifier (the name the module exports)'),
  kind: z.enum(FUNCTION_KINDS),
  description: z.string().max(2000).optional(),
  /** JSON-Schema-like description of the step configuration (`fields`) the function takes. */
  fields: z.record(z.string(), z.unknown()).optional(),
});

/** What a client may write. */
export const componentDefinitionFields = {
  name: z.string().trim().min(1).max(200),
  description: z.string().max(2000).nullable().optional(),
  access: z.enum(COMPONENT_ACCESS).optional(),
  owners: z.array(ownerSchema).max(100).optional(),
  image: z.string().trim().max(500).regex(IMAGE, 'must be a Docker image name such as hookline/http:1.0').nullable().optional(),
  module: z
    .string()
    .trim()
    .min(1)
    .max(500)
    .refine((module) => moduleProblem(module) === null, { error: (issue) => `module: ${moduleProblem(String(issue.input))}` })
    .nullable()
    .optional(),
  functions: z.array(componentFunctionSchema).max(200),
};

type Definition = { image?: string | null; module?: string | null; functions: { name: string }[] };

/** Every broken rule of a whole definition, one message each. */
export function componentProblems(component: Definition): string[] {
  const problems: string[] = [];
  if (!component.image && !component.module) problems.push('image, module: a component needs a Docker image, a Node module, or both');
  const seen = new Set<string>();
  for (const fn of component.functions) {
    if (seen.has(fn.name)) problems.push(`functions: function name "${fn.name}" is used more than once`);
    seen.add(fn.name);
  }
  return problems;
}

/** Adds one issue per broken rule to a zod refinement context. */
function checkComponentRules(component: Definition, ctx: z.RefinementCtx): void {
  for (const message of componentProblems(component)) ctx.addIssue({ code: 'custom', message });
}

/** The body of POST /components. */
export const componentCreateSchema = z.strictObject(componentDefinitionFields).superRefine(checkComponentRules);

/** The body of PATCH /components/{id}: any subset; the merged component is checked with the same rules. */
export const componentPatchSchema = z.strictObject(componentDefinitionFields).partial();

export type ComponentCreate = z.output<typeof componentCreateSchema>;
export type ComponentPatch = z.output<typeof componentPatchSchema>;

/** A component as the control plane stores and returns it, and as the runner fleet reads it. */
export const componentSchema = z.object({
  id: z.string(),
  name: z.string(),
  description: z.string().nullable(),
  access: z.enum(COMPONENT_ACCESS),
  owners: z.array(ownerSchema),
  /** Null for a built-in: it belongs to the platform. */
  tenant: z.string().nullable(),
  /** A built-in (runner/components): public, seeded by the control plane at every start, read-only through the API. */
  builtIn: z.boolean(),
  image: z.string().nullable(),
  module: z.string().nullable(),
  functions: z.array(componentFunctionSchema),
  createdAt: z.string(),
  updatedAt: z.string(),
});

export type Component = z.infer<typeof componentSchema>;
export type ComponentFunction = z.infer<typeof componentFunctionSchema>;
