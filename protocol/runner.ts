import { z } from 'zod';
import { BUILTIN_MODULE_PREFIX, moduleProblem, packageOf } from './component.js';
import { deploymentReportSchema, MAX_RUNNER_CAPACITY, MAX_RUNNER_DEPLOYMENTS } from './fleet.js';

export const RUNNER_DRIVERS = ['process', 'docker'] as const;

/**
 * How often a runner reports by default (the control plane's RUNNER_HEARTBEAT_SECONDS); one silent
 * for three intervals (6 s) is lost, so its flows move within seconds of its death.
 */
export const HEARTBEAT_SECONDS = 2;

/** The runner setting that lists the packages and folders whose modules its process driver runs. */
export const TRUSTED_MODULES_SETTING = 'RUNNER_TRUSTED_MODULES';

/** Whether `name` is a bare package name (`crm`, `@acme/crm`), without a subpath. */
export const isPackageName = (name: string) => moduleProblem(name) === null && packageOf(name) === name;

/**
 * What a process runner's operator trusts (RUNNER_TRUSTED_MODULES): these packages (and their
 * subpaths), and relative paths when it lists folders. Placement reads it; the runner checks
 * every module again itself, inside those folders.
 */
export const trustedModulesSchema = z.strictObject({
  packages: z.array(z.string().max(214).refine(isPackageName, 'must be a package name such as crm or @acme/crm')).max(200),
  folders: z.boolean(),
});
export type TrustedModules = z.infer<typeof trustedModulesSchema>;

/** Whether a process runner trusting `trusted` may run `module`: a built-in always, anything else only when its operator listed it. */
export function trustsModule(trusted: TrustedModules, module: string): boolean {
  if (module.startsWith(BUILTIN_MODULE_PREFIX)) return true;
  if (moduleProblem(module)) return false;
  const name = packageOf(module);
  return name === null ? trusted.folders : trusted.packages.includes(name);
}

/** What a runner says about itself when it registers. */
export const runnerRegistrationSchema = z.strictObject({
  name: z
    .string()
    .trim()
    .min(1)
    .max(100)
    .regex(/^[A-Za-z0-9._-]+$/, 'must be letters, digits, . _ or -'),
  host: z.string().trim().min(1).max(255),
  driver: z.enum(RUNNER_DRIVERS),
  /** How many step workers it takes at most. */
  capacity: z.number().int().min(1).max(MAX_RUNNER_CAPACITY),
  version: z.string().max(50).optional(),
  /** A process runner's trusted modules; a docker runner runs every step in a container and trusts none. Nothing when left out. */
  trustedModules: trustedModulesSchema.default(() => ({ packages: [], folders: false })),
});
export type RunnerRegistration = z.infer<typeof runnerRegistrationSchema>;

/** A heartbeat: the runner is alive, and this is the state of every deployment it has (protocol/fleet.ts). */
export const heartbeatSchema = z.strictObject({ deployments: z.array(deploymentReportSchema).max(MAX_RUNNER_DEPLOYMENTS).default([]) });
export type Heartbeat = z.infer<typeof heartbeatSchema>;
