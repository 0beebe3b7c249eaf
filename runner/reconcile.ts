import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { backoff } from '../protocol/backoff.js';
import type { DeploymentReport, DeploymentSpec, DesiredState, StepSpec } from '../protocol/fleet.js';
import type { FleetBroker } from './broker/types.js';
import type { ControlPlaneClient } from './control-plane.js';
import type { RunningWorker, StepDriver, WorkerObserver } from './drivers/types.js';
import type { LogShipper } from './logs.js';
import type { WorkerConfig, WorkerSecrets } from './worker/config.js';

/** A step that crashes this many times before it was ever ready fails its deployment. */
const CRASHES_BEFORE_READY = 3;

interface StepState {
  spec: StepSpec;
  worker: RunningWorker | undefined;
  state: DeploymentReport['steps'][number]['state'];
  restarts: number;
  reason: string | undefined;
  everReady: boolean;
}

interface Deployment {
  spec: DeploymentSpec;
  desired: 'running' | 'removed';
  state: DeploymentReport['state'];
  reason: string | undefined;
  steps: Map<string, StepState>;
  deadline: NodeJS.Timeout | undefined;
  /** Set once its workers are stopped: what they report after is stale. */
  retired: boolean;
  /** Its deploy is queued or done (a deployment recover() made has workers but is not deployed yet). */
  scheduled: boolean;
}

export interface ReconcilerOptions {
  client: ControlPlaneClient;
  driver: StepDriver;
  broker: FleetBroker;
  logs: LogShipper;
  logger: Logger;
  controlPlaneUrl: string;
  /** Passed on to every worker (OUTBOUND_ALLOWED_NETWORKS). */
  outboundAllowedNetworks: string[];
  /** How long all steps of a deployment have to get ready. */
  deployTimeoutMs: number;
  /** Called whenever a report would say something new. */
  changed(): void;
}

/** The hash that says whether a running worker was started with this configuration. */
export const specHash = (config: WorkerConfig) => createHash('sha256').update(JSON.stringify(config)).digest('hex').slice(0, 32);

/** The end of a worker's output as a reason: the message of its last error line when it logged JSON, else its last lines. */
export function describeExit(info: { code: number | null; signal: string | null; output: string }): string {
  const lines = info.output.split('\n').filter(Boolean);
  let reason: string | undefined;
  for (const line of [...lines].reverse()) {
    try {
      const entry = JSON.parse(line) as { level?: number; msg?: string };
      if ((entry.level ?? 0) >= 50 && entry.msg) {
        reason = entry.msg;
        break;
      }
    } catch {
      // not JSON: node's own output, such as a stack trace
    }
  }
  reason ??= lines.slice(-5).join('\n');
  const how = info.signal ? `was killed (${info.signal})` : `exited with code ${info.code}`;
  return `${how}${reason ? `: ${reason}` : ''}`.slice(0, 2000);
}

/**
 * Makes what runs on this runner match the control plane's desired state: deploys new
 * generations (queues, step tokens, a worker per step), removes what is no longer wanted, and keeps
 * a report of every deployment's state. Operations on one flow run one after another.
 */
export class Reconciler {
  private readonly deployments = new Map<string, Deployment>();
  private readonly chains = new Map<string, Promise<void>>();

  constructor(private readonly options: ReconcilerOptions) {}

  /** The configuration a step's worker gets. */
  workerConfig(spec: DeploymentSpec, step: StepSpec): WorkerConfig {
    return {
      flowId: spec.flowId,
      tenant: spec.tenant,
      generation: spec.generation,
      step,
      retry: spec.retry,
      maxMessages: spec.maxMessages,
      passthrough: spec.passthrough,
      controlPlaneUrl: this.options.controlPlaneUrl,
      outboundAllowedNetworks: this.options.outboundAllowedNetworks,
      broker: this.options.broker.workerBroker,
    };
  }

  /**
   * Workers an earlier run of this runner left: adopted when the desired state still wants them as
   * they are (same generation, same configuration), removed otherwise.
   */
  async recover(state: DesiredState): Promise<void> {
    const adopted = await this.options.driver.recover((key, hash) => {
      const wanted = state.deployments.find((d) => d.flowId === key.flowId && d.generation === key.generation && d.desired === 'running');
      const step = wanted?.spec.steps.find((s) => s.id === key.stepId);
      if (!wanted || !step || specHash(this.workerConfig(wanted.spec, step)) !== hash) return null;
      // Its step token went to its stdin with its earlier run: a start after a crash gets one minted now, once.
      let secrets: Promise<WorkerSecrets> | undefined;
      const mint = async () => ({
        stepToken: await this.options.client.stepToken(key.flowId, key.stepId),
        amqpUrl: this.options.broker.workerUrl,
      });
      return {
        observer: this.observer(this.deploymentFor(wanted.spec), step.id),
        secrets: () =>
          (secrets ??= mint().catch((error: unknown) => {
            secrets = undefined;
            throw error;
          })),
      };
    });
    for (const worker of adopted) {
      const step = this.deployments.get(worker.key.flowId)?.steps.get(worker.key.stepId);
      if (step) step.worker = worker;
    }
    if (adopted.length > 0) this.options.logger.info({ workers: adopted.length }, 'adopted the step workers an earlier run left');
  }

  private deploymentFor(spec: DeploymentSpec): Deployment {
    const existing = this.deployments.get(spec.flowId);
    if (existing && existing.spec.generation === spec.generation) return existing;
    const deployment: Deployment = {
      spec,
      desired: 'running',
      state: 'deploying',
      reason: undefined,
      steps: new Map(
        spec.steps.map((step) => [
          step.id,
          { spec: step, worker: undefined, state: 'starting', restarts: 0, reason: undefined, everReady: false },
        ]),
      ),
      deadline: undefined,
      retired: false,
      scheduled: false,
    };
    this.deployments.set(spec.flowId, deployment);
    return deployment;
  }

  /** Runs `work` after whatever is under way for the flow. */
  private afterFlowWork(flowId: string, work: () => Promise<void>): void {
    const next = (this.chains.get(flowId) ?? Promise.resolve())
      .then(work)
      .catch((error: Error) => this.options.logger.error({ err: error, flowId }, 'reconcile step failed'));
    this.chains.set(flowId, next);
  }

  apply(state: DesiredState): void {
    const listed = new Set<string>();
    for (const wanted of state.deployments) {
      listed.add(wanted.flowId);
      const current = this.deployments.get(wanted.flowId);
      if (wanted.desired === 'running') {
        if (current && current.spec.generation === wanted.generation && current.desired === 'running') {
          if (!current.scheduled) this.schedule(current);
          continue;
        }
        if (current) this.afterFlowWork(wanted.flowId, () => this.retire(current));
        this.schedule(this.deploymentFor(wanted.spec));
      } else {
        if (current && current.spec.generation === wanted.generation && current.desired === 'removed') continue;
        // Removing a generation other than the one here (a cleanup of a flow that moved): its workers go first.
        if (current && current.spec.generation !== wanted.generation) this.afterFlowWork(wanted.flowId, () => this.retire(current));
        const deployment = this.deploymentFor(wanted.spec);
        deployment.desired = 'removed';
        deployment.state = 'removing';
        this.options.changed();
        this.afterFlowWork(wanted.flowId, () => this.remove(deployment));
      }
    }
    // No longer ours (moved to another runner while this one was away): the workers go, the queues stay.
    for (const [flowId, deployment] of this.deployments) {
      if (listed.has(flowId)) continue;
      this.deployments.delete(flowId);
      this.afterFlowWork(flowId, () => this.retire(deployment));
    }
  }

  private schedule(deployment: Deployment): void {
    deployment.scheduled = true;
    this.afterFlowWork(deployment.spec.flowId, () => this.deploy(deployment));
  }

  reports(): DeploymentReport[] {
    return [...this.deployments.values()].map((d) => ({
      flowId: d.spec.flowId,
      generation: d.spec.generation,
      state: d.state,
      ...(d.reason ? { reason: d.reason } : {}),
      steps: [...d.steps.values()].map((s) => ({
        stepId: s.spec.id,
        state: s.state,
        restarts: s.restarts,
        ...(s.reason ? { reason: s.reason } : {}),
      })),
    }));
  }

  private observer(deployment: Deployment, stepId: string): WorkerObserver {
    const step = () => (deployment.retired ? undefined : deployment.steps.get(stepId));
    return {
      ready: () => {
        const s = step();
        if (!s) return;
        s.state = 'ready';
        s.everReady = true;
        if (deployment.state === 'deploying' && [...deployment.steps.values()].every((x) => x.state === 'ready')) {
          deployment.state = 'ready';
          clearTimeout(deployment.deadline);
          this.options.logger.info(
            { flowId: deployment.spec.flowId, generation: deployment.spec.generation },
            'flow deployed: every step is ready',
          );
        }
        this.options.changed();
      },
      crashed: (info) => {
        const s = step();
        if (!s) return;
        s.restarts++;
        s.reason = describeExit(info);
        s.state = 'restarting';
        this.options.logger.warn({ flowId: deployment.spec.flowId, stepId, restarts: s.restarts, reason: s.reason }, 'step worker crashed');
        if (!s.everReady && s.restarts >= CRASHES_BEFORE_READY && deployment.state === 'deploying') {
          this.fail(deployment, `step ${stepId} crashed ${s.restarts} times before it was ready; it ${s.reason}`);
        }
        this.options.changed();
      },
      log: (line) => this.options.logs.add(deployment.spec.flowId, stepId, line),
    };
  }

  /** Declares the flow's queues and starts a worker for every step that has none. */
  private async deploy(deployment: Deployment): Promise<void> {
    const { broker, client, driver, logger } = this.options;
    const { spec } = deployment;
    if (deployment.retired || deployment.desired !== 'running') return;
    logger.info({ flowId: spec.flowId, generation: spec.generation, steps: spec.steps.length }, 'deploying flow');
    try {
      const missing = [...deployment.steps.values()].filter((s) => !s.worker);
      // The workers load while the queues are declared and the tokens minted.
      if (missing.length > 0) driver.prepare?.(missing.length);
      await broker.declareFlow(spec);
      if (missing.length === 0) return;
      const configs = missing.map((s) => this.workerConfig(spec, s.spec));
      const problems = (await Promise.all(configs.map((c) => driver.check(c)))).filter((p): p is string => p !== null);
      if (problems.length > 0) return this.fail(deployment, problems.join('; '));
      const tokens = await Promise.all(missing.map((s) => client.stepToken(spec.flowId, s.spec.id)));
      deployment.deadline = setTimeout(() => {
        const late = [...deployment.steps.values()].filter((s) => s.state !== 'ready').map((s) => s.spec.id);
        this.fail(
          deployment,
          `step${late.length === 1 ? '' : 's'} ${late.join(', ')} did not get ready within ${Math.round(this.options.deployTimeoutMs / 1000)} s`,
        );
      }, this.options.deployTimeoutMs);
      await Promise.all(
        missing.map(async (step, i) => {
          const config = configs[i]!;
          const key = { flowId: spec.flowId, stepId: step.spec.id, generation: spec.generation };
          step.worker = await driver.start(
            {
              key,
              config,
              secrets: { stepToken: tokens[i]!, amqpUrl: broker.workerUrl },
              specHash: specHash(config),
              attach: broker.attach ? (child) => broker.attach!(child, spec.flowId, step.spec.id) : undefined,
            },
            this.observer(deployment, step.spec.id),
          );
          if (deployment.retired) await step.worker.stop();
        }),
      );
    } catch (error) {
      this.fail(deployment, `cannot deploy: ${(error as Error).message}`);
    }
  }

  /** A deployment that cannot run: reported as failed (the control plane emits flow.failed and asks for its removal), its workers stopped. */
  private fail(deployment: Deployment, reason: string): void {
    if (deployment.state !== 'deploying') return;
    clearTimeout(deployment.deadline);
    deployment.state = 'failed';
    deployment.reason = reason.slice(0, 4000);
    this.options.logger.error({ flowId: deployment.spec.flowId, reason }, 'flow could not be deployed');
    this.options.changed();
    this.afterFlowWork(deployment.spec.flowId, () => this.stopWorkers(deployment));
  }

  private async stopWorkers(deployment: Deployment): Promise<void> {
    await Promise.all(
      [...deployment.steps.values()].map(async (step) => {
        const worker = step.worker;
        step.worker = undefined;
        await worker?.stop();
      }),
    );
  }

  /** Stops the workers of a deployment that is no longer this runner's (or was replaced by a newer generation); its queues stay. */
  private async retire(deployment: Deployment): Promise<void> {
    deployment.retired = true;
    clearTimeout(deployment.deadline);
    await this.stopWorkers(deployment);
  }

  /** The flow stops: workers first (they finish what they hold), then its queues; tried again until the broker lets it. */
  private async remove(deployment: Deployment): Promise<void> {
    clearTimeout(deployment.deadline);
    deployment.retired = true;
    await this.stopWorkers(deployment);
    for (let failures = 1; ; failures++) {
      try {
        await this.options.broker.deleteFlow(deployment.spec);
        break;
      } catch (error) {
        if (this.closed) return;
        const wait = backoff(failures, { firstMs: 1000, maxMs: 30_000 });
        this.options.logger.warn({ err: error, flowId: deployment.spec.flowId, retryInMs: wait }, 'cannot delete the flow’s queues yet');
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
    deployment.state = 'removed';
    this.options.logger.info({ flowId: deployment.spec.flowId }, 'flow removed: workers stopped, queues deleted');
    this.options.changed();
  }

  private closed = false;

  /** Stops watching; the driver decides what happens to the workers (process: stopped; docker: left to adopt). */
  async close(): Promise<void> {
    this.closed = true;
    for (const deployment of this.deployments.values()) clearTimeout(deployment.deadline);
    await Promise.all(this.chains.values());
  }
}
