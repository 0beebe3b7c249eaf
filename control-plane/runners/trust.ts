import type { DeploymentSpec, StepSpec } from '../../protocol/fleet.js';
import { TRUSTED_MODULES_SETTING, trustsModule, type TrustedModules } from '../../protocol/runner.js';

/** What placement knows of a runner to tell whether it may run a step. */
export interface RunnerFit {
  driver: 'process' | 'docker';
  trustedModules: TrustedModules;
}

/**
 * Whether the runner may run the step: a docker runner in a container, from the component's image;
 * a process runner as its own user, so only a built-in or a module its operator trusts
 * (RUNNER_TRUSTED_MODULES). A tenant's component thus runs in a container unless trusted.
 */
export const mayRunStep = (runner: RunnerFit, step: StepSpec) =>
  runner.driver === 'docker'
    ? step.component.image !== null
    : step.component.module !== null && trustsModule(runner.trustedModules, step.component.module);

export const mayRun = (runner: RunnerFit, spec: DeploymentSpec) => spec.steps.every((step) => mayRunStep(runner, step));

/** Why a step can run on none of `fleet`. */
function unrunnableStep(fleet: RunnerFit[], step: StepSpec): string {
  const { name, image, module } = step.component;
  const why: string[] = [];
  if (!fleet.some((r) => r.driver === 'docker')) why.push('there is no docker runner');
  else if (!image) why.push('it has no image for a docker runner');
  if (!module) why.push('it has no module');
  else if (fleet.some((r) => r.driver === 'process')) why.push('no process runner trusts it');
  return `step ${step.id}: component ${name} runs in a container unless the operator of a process runner trusts its module${module ? ` ${module}` : ''} (${TRUSTED_MODULES_SETTING}); among the runners this flow may use, ${why.join(' and ')}`;
}

/**
 * Why no runner of `fleet` (the alive runners the flow may use) could ever run the flow, whatever
 * their room; null when one could (or there is none: the flow waits for one to come).
 */
export function unrunnableReason(fleet: RunnerFit[], spec: DeploymentSpec): string | null {
  if (fleet.length === 0 || fleet.some((runner) => mayRun(runner, spec))) return null;
  const steps = spec.steps.filter((step) => !fleet.some((runner) => mayRunStep(runner, step)));
  if (steps.length > 0) return steps.map((step) => unrunnableStep(fleet, step)).join('; ');
  return `no one runner this flow may use runs all its steps: a docker runner needs an image for every step, a process runner must trust every module (${TRUSTED_MODULES_SETTING})`;
}
