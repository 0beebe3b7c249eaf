import { z } from 'zod';
import { deploymentReportSchema, MAX_RUNNER_CAPACITY, MAX_RUNNER_DEPLOYMENTS } from './fleet.js';

export const RUNNER_DRIVERS = ['process', 'docker'] as const;

/** How often a runner reports by default (the control plane's RUNNER_HEARTBEAT_SECONDS); one silent for three intervals is lost. */
export const HEARTBEAT_SECONDS = 10;

/** What a runner says about itself when it registers. */
export const runnerRegistrationSchema = z.strictObject({
  name: z.string().trim().min(1).max(100).regex(/^[A-Za-z0-9._-]+$/, 'must be letters, digits, . _ or -'),
  host: z.string().trim().min(1).max(255),
  driver: z.enum(RUNNER_DRIVERS),
  /** How many step workers it takes at most. */
  capacity: z.number().int().min(1).max(MAX_RUNNER_CAPACITY),
  version: z.string().max(50).optional(),
});
export type RunnerRegistration = z.infer<typeof runnerRegistrationSchema>;

/** A heartbeat: the runner is alive, and this is the state of every deployment it has (protocol/fleet.ts). */
export const heartbeatSchema = z.strictObject({ deployments: z.array(deploymentReportSchema).max(MAX_RUNNER_DEPLOYMENTS).default([]) });
export type Heartbeat = z.infer<typeof heartbeatSchema>;
