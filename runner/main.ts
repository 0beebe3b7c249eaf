/**
 * A runner node: registers with the control plane under its service account, waits (long poll)
 * for what it should run, makes it so (reconcile.ts) and reports back at every change and every
 * heartbeat. `npm start` runs one inside the control plane's process, on the in-process bus.
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import Docker from 'dockerode';
import { pino, type Logger } from 'pino';
import { z } from 'zod';
import { backoff } from '../protocol/backoff.js';
import { MAX_RUNNER_CAPACITY } from '../protocol/fleet.js';
import { allowedNetworksSetting } from '../protocol/outbound.js';
import { RUNNER_DRIVERS } from '../protocol/runner.js';
import { logLevel, oneOf, parseSettings, seconds, settingsHelp, whole, type SettingsOf, type SettingsTable } from '../protocol/settings.js';
import { AmqpFleetBroker } from './broker/amqp.js';
import { MemoryFleetBroker, type EventPort } from './broker/memory.js';
import type { FleetBroker } from './broker/types.js';
import { ControlPlaneClient, ControlPlaneError } from './control-plane.js';
import { DockerDriver } from './drivers/docker.js';
import { ProcessDriver } from './drivers/process.js';
import type { StepDriver } from './drivers/types.js';
import { HOOKLINE_VERSION } from '../protocol/builtins.js';
import { LogShipper } from './logs.js';
import { Reconciler } from './reconcile.js';
import { parseTrustedModules, realTrustedFolders, trustReport } from './trusted-modules.js';

/** The runner's settings, in the order --help lists them. */
export const RUNNER_SETTINGS = {
  CONTROL_PLANE_URL: {
    schema: z.url({ message: 'must be the control plane’s URL, such as http://127.0.0.1:3000' }),
    help: 'the control plane (required)',
  },
  RUNNER_TOKEN: {
    schema: z
      .string({ message: 'is required: a service-account token (hlk_...) with runners.write' })
      .regex(/^hlk_/, 'must be a service-account token (hlk_...) with runners.write'),
    help: "a service-account token with runners.write (required; POST /api/v1/tokens). An account of a tenant runs that tenant's flows; an account of no tenant (only admins make one) runs every tenant's",
    secret: true,
  },
  AMQP_URL: {
    schema: z
      .string()
      .regex(/^amqps?:\/\//, 'must start with amqp:// or amqps://')
      .optional(),
    help: 'the RabbitMQ the control plane uses (required, but for the runner npm start runs on the in-process bus)',
  },
  BUS_NAMESPACE: {
    schema: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_-]*$/, 'must be lowercase letters, digits, - or _')
      .default('hookline'),
    help: "the control plane's BUS_NAMESPACE",
  },
  RUNNER_NAME: {
    schema: z
      .string()
      .regex(/^[A-Za-z0-9._-]+$/, 'must be letters, digits, . _ or -')
      .default(hostname().replace(/[^A-Za-z0-9._-]/g, '-')),
    help: "this node's name, unique per account",
    shownDefault: 'the host name',
  },
  RUNNER_DRIVER: {
    schema: oneOf(RUNNER_DRIVERS).default('process'),
    help: 'process (a child process per step) | docker (a container per step; DOCKER_HOST says which engine, images from npm run images)',
  },
  RUNNER_CAPACITY: {
    schema: whole(1, MAX_RUNNER_CAPACITY).default(16),
    help: `how many step workers it takes, 1 to ${MAX_RUNNER_CAPACITY}`,
  },
  RUNNER_WARM_WORKERS: {
    schema: whole(0, 64).default(4),
    help: 'process driver: how many step workers wait, loaded, for a step to start in less time (0: fork each when needed)',
  },
  RUNNER_DATA_DIR: {
    schema: z.string().min(1).optional(),
    help: 'where it keeps what it needs across restarts (default .hookline/runner-<name>)',
  },
  RUNNER_DEPLOY_TIMEOUT_SECONDS: {
    schema: seconds.default(60),
    help: 'how long the steps of a flow have to get ready',
  },
  OUTBOUND_ALLOWED_NETWORKS: {
    schema: allowedNetworksSetting,
    help: "private networks the steps' calls may reach, comma-separated CIDRs such as 10.0.0.0/8,127.0.0.1/32 (default none: loopback, link-local and private addresses are refused, after DNS and at every redirect)",
  },
  RUNNER_TRUSTED_MODULES: {
    schema: z
      .string()
      .optional()
      .transform((value, ctx) => {
        const parsed = parseTrustedModules(value);
        if (!('wrong' in parsed)) return parsed;
        ctx.addIssue({
          code: 'custom',
          message: `must be package names (crm, @acme/crm) or absolute folder paths, separated by commas: ${parsed.wrong} is neither`,
        });
        return z.NEVER;
      }),
    help: "process driver: the code it runs as this runner's user besides the built-ins, comma-separated: package names installed beside the runner (@acme/crm trusts @acme/crm/...) and absolute folder paths (a component's ./path resolves inside them). Default: none, only the built-ins. Any other component runs in a container, on a docker runner",
  },
  LOG_LEVEL: { schema: logLevel, help: 'fatal | error | warn | info | debug | trace | silent' },
} satisfies SettingsTable;
export type RunnerConfig = SettingsOf<typeof RUNNER_SETTINGS>;

/** A runner on a host of its own needs RabbitMQ; only the one npm start runs may share the control plane's in-process bus. */
const STANDALONE_SETTINGS = {
  ...RUNNER_SETTINGS,
  AMQP_URL: {
    schema: z
      .string({ message: 'is required: the RabbitMQ the control plane uses' })
      .regex(/^amqps?:\/\//, 'must start with amqp:// or amqps://'),
    help: 'the RabbitMQ the control plane uses (required)',
  },
} satisfies SettingsTable;

const HELP = `Hookline runner node: runs the steps of the flows the control plane places on it

Usage: npx tsx runner/main.ts
${settingsHelp(STANDALONE_SETTINGS)}`;

export interface RunningRunner {
  id: string;
  stop(): Promise<void>;
}

/** Reads the configuration; a wrong value names the variable and what it expects. */
export function loadRunnerConfig(env: Record<string, string | undefined>, options: { standalone?: boolean } = {}): RunnerConfig {
  return parseSettings(options.standalone ? STANDALONE_SETTINGS : RUNNER_SETTINGS, env);
}

/**
 * Starts a runner. Without AMQP_URL it needs `events`, the in-process bus of the control plane it
 * runs beside (npm start): its queues are then in memory too.
 */
export async function startRunner(config: RunnerConfig, logger: Logger, options: { events?: EventPort } = {}): Promise<RunningRunner> {
  const docker = config.RUNNER_DRIVER === 'docker';
  // A docker runner runs every step in a container: it trusts nothing, whatever the setting says.
  const trusted = docker ? { packages: [], folders: [] } : await realTrustedFolders(config.RUNNER_TRUSTED_MODULES);
  const client = new ControlPlaneClient(config.CONTROL_PLANE_URL, config.RUNNER_TOKEN);
  const dataDir = config.RUNNER_DATA_DIR ?? join('.hookline', `runner-${config.RUNNER_NAME}`);
  let broker: FleetBroker;
  if (config.AMQP_URL) {
    broker = new AmqpFleetBroker(config.AMQP_URL, config.BUS_NAMESPACE);
  } else if (options.events) {
    const memory = new MemoryFleetBroker(options.events, config.BUS_NAMESPACE, logger);
    memory.start();
    broker = memory;
  } else {
    throw new Error(
      'AMQP_URL is required: a runner on its own shares RabbitMQ with the control plane (only the runner npm start runs inside the control plane may do without)',
    );
  }
  if (config.RUNNER_DRIVER === 'docker' && broker.kind !== 'amqp')
    throw new Error('RUNNER_DRIVER=docker needs RabbitMQ (AMQP_URL): containers cannot reach an in-process broker');
  const driver: StepDriver = docker
    ? new DockerDriver({ docker: new Docker(), runnerName: config.RUNNER_NAME, logger })
    : new ProcessDriver({ dataDir, logger, trusted, warmWorkers: config.RUNNER_WARM_WORKERS });

  const registration = {
    name: config.RUNNER_NAME,
    host: hostname(),
    driver: config.RUNNER_DRIVER,
    capacity: config.RUNNER_CAPACITY,
    version: HOOKLINE_VERSION,
    trustedModules: trustReport(trusted),
  };
  const stopping = new AbortController();
  const register = async () => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await client.register(registration);
      } catch (error) {
        if (stopping.signal.aborted) throw error;
        const wait = backoff(attempt, { firstMs: 1_000, maxMs: 5_000, jitter: 0.2 });
        logger.warn({ err: (error as Error).message, retryInMs: wait }, 'cannot register with the control plane yet');
        await sleep(wait);
      }
    }
  };
  let { id, heartbeatSeconds } = await register();
  logger.info({ runnerId: id, name: config.RUNNER_NAME, driver: config.RUNNER_DRIVER, broker: broker.kind }, 'runner registered');

  const logs = new LogShipper(client, id, logger);
  logs.start();

  // Reports go at every change (coalesced) and every heartbeat interval.
  let reportTimer: NodeJS.Timeout | undefined;
  let sending: Promise<void> | undefined;
  let again = false;
  const report = (): void => {
    if (stopping.signal.aborted) return;
    if (sending) {
      again = true;
      return;
    }
    clearTimeout(reportTimer);
    sending = client
      .heartbeat(id, reconciler.reports())
      .then((answer) => {
        heartbeatSeconds = answer.heartbeatSeconds;
      })
      .catch((error: Error) => logger.warn({ err: error.message }, 'heartbeat failed; trying again at the next one'))
      .finally(() => {
        sending = undefined;
        if (again) {
          again = false;
          report();
        } else if (!stopping.signal.aborted) {
          reportTimer = setTimeout(report, heartbeatSeconds * 1000);
        }
      });
  };
  let soon: NodeJS.Timeout | undefined;
  const reconciler = new Reconciler({
    client,
    driver,
    broker,
    logs,
    logger,
    controlPlaneUrl: config.CONTROL_PLANE_URL,
    outboundAllowedNetworks: config.OUTBOUND_ALLOWED_NETWORKS,
    deployTimeoutMs: config.RUNNER_DEPLOY_TIMEOUT_SECONDS * 1000,
    changed: () => {
      clearTimeout(soon);
      soon = setTimeout(report, 20);
    },
  });

  const first = await client.desired(id, -1, 0);
  await reconciler.recover(first);
  reconciler.apply(first);
  report();

  const follow = (async () => {
    let version = first.version;
    let failures = 0;
    while (!stopping.signal.aborted) {
      try {
        const state = await client.desired(id, version, 25, stopping.signal);
        version = state.version;
        reconciler.apply(state);
        failures = 0;
      } catch (error) {
        if (stopping.signal.aborted) return;
        if (error instanceof ControlPlaneError && error.status === 404) {
          logger.warn({ runnerId: id }, 'the control plane forgot this runner; registering again');
          ({ id, heartbeatSeconds } = await register());
          version = -1;
          continue;
        }
        // At most 2 s apart, so a control plane that is back is heard from within seconds.
        const wait = backoff(++failures, { firstMs: 500, maxMs: 2_000, jitter: 0.2 });
        logger.warn({ err: (error as Error).message, retryInMs: wait }, 'cannot read the desired state; trying again');
        await sleep(wait).catch(() => {});
      }
    }
  })();

  return {
    id,
    async stop() {
      stopping.abort();
      clearTimeout(reportTimer);
      clearTimeout(soon);
      await follow;
      await sending;
      await reconciler.close();
      await driver.close();
      await logs.stop();
      await broker.close();
      logger.info({ runnerId: id }, 'runner stopped');
    },
  };
}

async function main(): Promise<void> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    console.log(HELP);
    return;
  }
  let config: RunnerConfig;
  try {
    config = loadRunnerConfig(process.env, { standalone: true });
  } catch (error) {
    console.error(`${(error as Error).message}\nRun with --help to see every setting.`);
    process.exit(1);
  }
  const logger = pino({ level: config.LOG_LEVEL, base: { service: 'runner' }, redact: ['token', '*.token'] });
  // Listening before the start: a signal during it stops the runner once it is up.
  let started: Promise<RunningRunner> | undefined;
  const stop = () => void (started ?? Promise.resolve(undefined)).then((runner) => runner?.stop()).then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  started = startRunner(config, logger);
  await started;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
