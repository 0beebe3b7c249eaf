import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { MemoryBus } from '../../control-plane/bus/memory.js';
import { users } from '../../control-plane/iam/schema.js';
import { loadRunnerConfig, startRunner, type RunningRunner } from '../../runner/main.js';
import type { TestControlPlane } from './control-plane.js';

/** A service account for runners (of `tenantId`, or of no tenant: a platform-wide runner) and a token for it. */
export async function runnerAccount(cp: TestControlPlane, tenantId: string | null = null): Promise<{ id: string; token: string }> {
  const [account] = await cp.services.db
    .insert(users)
    .values({ username: `runner-${randomUUID().slice(0, 8)}`, kind: 'service', tenantId, permissions: ['runners.write', 'runners.read'] })
    .returning({ id: users.id });
  const { token } = await cp.services.tokens.issueServiceToken(cp.services.db, {
    userId: account!.id,
    createdBy: account!.id,
    description: 'test runner',
  });
  return { id: account!.id, token };
}

export interface TestRunner extends RunningRunner {
  name: string;
  dataDir: string;
}

/** The test components' folder (test/fixtures): the runners tests start trust it, as an operator lists a folder in RUNNER_TRUSTED_MODULES. */
export const FIXTURES_DIR = fileURLToPath(new URL('../fixtures', import.meta.url));

/**
 * A real runner node in this process, against `cp`: on RabbitMQ when `amqpUrl` is given (with the
 * control plane's namespace), else on the control plane's in-process bus, as npm start runs it.
 * It trusts `trustedModules` (RUNNER_TRUSTED_MODULES; default FIXTURES_DIR, '' for the built-ins only).
 */
export async function startTestRunner(
  cp: TestControlPlane,
  options: {
    token?: string;
    name?: string;
    driver?: 'process' | 'docker';
    amqpUrl?: string;
    namespace?: string;
    capacity?: number;
    deployTimeoutSeconds?: number;
    trustedModules?: string;
    outboundAllowedNetworks?: string;
    /** None unless asked: most tests would only pay for forking them. */
    warmWorkers?: number;
  } = {},
): Promise<TestRunner> {
  const token = options.token ?? (await runnerAccount(cp)).token;
  const name = options.name ?? `runner-${randomUUID().slice(0, 8)}`;
  const dataDir = await mkdtemp(join(tmpdir(), 'hookline-runner-'));
  const config = loadRunnerConfig({
    CONTROL_PLANE_URL: cp.url,
    RUNNER_TOKEN: token,
    RUNNER_NAME: name,
    RUNNER_DRIVER: options.driver ?? 'process',
    RUNNER_CAPACITY: String(options.capacity ?? 16),
    RUNNER_DATA_DIR: dataDir,
    RUNNER_WARM_WORKERS: String(options.warmWorkers ?? 0),
    RUNNER_DEPLOY_TIMEOUT_SECONDS: String(options.deployTimeoutSeconds ?? 60),
    RUNNER_TRUSTED_MODULES: options.trustedModules ?? FIXTURES_DIR,
    AMQP_URL: options.amqpUrl,
    BUS_NAMESPACE: options.namespace,
    OUTBOUND_ALLOWED_NETWORKS: options.outboundAllowedNetworks,
  });
  const runner = await startRunner(config, pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }), {
    events: !options.amqpUrl && cp.services.bus instanceof MemoryBus ? cp.services.bus : undefined,
  });
  return {
    ...runner,
    name,
    dataDir,
    async stop() {
      await runner.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
