import { serve } from '@hono/node-server';
import { pathToFileURL } from 'node:url';
import { OutboundPolicy } from '../protocol/outbound.js';
import { createApp } from './app.js';
import { subscribeAuditLog } from './audit/events.js';
import { seedBuiltinComponents } from './components/builtins.js';
import { createBus } from './bus/index.js';
import { OutboxRelay } from './bus/relay.js';
import { SettingsError, settingsHelp } from '../protocol/settings.js';
import { CONTROL_PLANE_SETTINGS, loadConfig, type Config } from './config.js';
import { openDatabase, type OpenOptions } from './db/index.js';
import { subscribeEdgeBridge } from './edge/bridge.js';
import { subscribeFlowRepository } from './flows/events.js';
import { bootstrapIam } from './iam/bootstrap.js';
import { loadSigningKey } from './iam/keys.js';
import { TokenService } from './iam/tokens.js';
import { KeyRing, loadMasterKeys } from './secrets/keys.js';
import { subscribeSecrets } from './secrets/events.js';
import { subscribeExecutions } from './executions/events.js';
import { relayOutlet } from './runners/entry.js';
import { subscribeFleet } from './runners/events.js';
import { DesiredStateNotifier } from './runners/notifier.js';
import { PlacementLoop } from './runners/placement.js';
import { startJanitor } from './janitor.js';
import { outboundFetch } from './outbound.js';
import { createLogger, type Logger } from './logger.js';
import type { Services } from './services.js';

export interface RunningControlPlane {
  url: string;
  services: Services;
  admin: Awaited<ReturnType<typeof bootstrapIam>>;
  close(): Promise<void>;
}

/** Opens the database (and migrates it), the bus and the relay, subscribes the consumers and serves the API. */
export async function startControlPlane(
  config: Config,
  logger: Logger = createLogger(config.LOG_LEVEL),
  options: OpenOptions = {},
): Promise<RunningControlPlane> {
  const database = await openDatabase(config, logger, options);
  await database.migrate();
  const { db } = database;
  const signingKey = await loadSigningKey(db, config);
  const admin = await bootstrapIam(db, { username: config.ADMIN_USERNAME, password: config.ADMIN_PASSWORD });
  await seedBuiltinComponents(db);
  const keys = new KeyRing(loadMasterKeys(config));
  await keys.assertMasterKeysKnown(db);
  const bus = await createBus(config, logger, database.ping);
  const relay = new OutboxRelay(db, relayOutlet(bus, config.BUS_NAMESPACE), logger);
  const notifier = new DesiredStateNotifier();
  const placement = { kick: () => {} };
  const services: Services = {
    config,
    database,
    db,
    bus,
    relay,
    logger,
    signingKey,
    tokens: new TokenService(db, signingKey, config.TOKEN_TTL_SECONDS),
    keys,
    notifier,
    placement,
    outbound: outboundFetch(new OutboundPolicy(config.OUTBOUND_ALLOWED_NETWORKS)),
  };
  const placementLoop = new PlacementLoop(services);
  placement.kick = () => placementLoop.kick();
  relay.start();
  placementLoop.start();
  const stopJanitor = startJanitor(db, logger, {
    auditRetentionDays: config.AUDIT_RETENTION_DAYS,
    stepLogRetentionDays: config.STEP_LOG_RETENTION_DAYS,
  });
  await subscribeFlowRepository(services);
  await subscribeAuditLog(services);
  await subscribeSecrets(services);
  await subscribeEdgeBridge(services);
  await subscribeExecutions(services);
  await subscribeFleet(services);

  const app = createApp(services);
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: config.HOST, port: config.PORT }, () => resolve(s));
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.PORT;
  const url = `http://${config.HOST}:${port}`;
  logger.info({ url, database: database.driver, bus: bus.kind }, 'control plane listening');

  let closing: Promise<void> | null = null;
  const close = () =>
    (closing ??= (async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      stopJanitor();
      await placementLoop.stop();
      await relay.stop();
      await bus.close();
      await database.close();
    })());
  return { url, services, admin, close };
}

const HELP = `Hookline control plane

Usage: npx tsx control-plane/main.ts   (npm start runs it with the edge Worker: scripts/start.ts)

Runs on embedded defaults with no set-up: PGlite in .hookline/pglite and the in-process event bus.
Configuration comes from the environment:
${settingsHelp(CONTROL_PLANE_SETTINGS)}
See README.md and docs/ for more.`;

/** What the control plane prints when it is up: where it is, and how to log in. */
export function banner(running: RunningControlPlane, config: Config): string[] {
  const base = config.PUBLIC_URL ?? running.url;
  const lines = [
    '',
    'Hookline control plane is running',
    `  API         ${base}`,
    `  API docs    ${base}/docs   (OpenAPI: ${base}/openapi.json)`,
    `  Health      ${base}/healthcheck`,
    `  Database    ${running.services.database.driver === 'pglite' ? `PGlite in ${config.PGLITE_DIR}` : running.services.database.driver}`,
    `  Event bus   ${running.services.bus.kind === 'memory' ? 'in-process' : 'RabbitMQ'}`,
  ];
  if (running.admin.created) {
    lines.push(
      '',
      `First admin created: ${running.admin.username}`,
      running.admin.generated
        ? `  password: ${running.admin.password}   (shown once; set ADMIN_PASSWORD to choose it)`
        : '  password: the ADMIN_PASSWORD you set',
    );
  } else {
    lines.push('', `Admin: ${config.ADMIN_USERNAME}, with the password printed on the first start (lost it? npm run reset-admin-password)`);
  }
  lines.push(
    '',
    'Log in:',
    `  curl -s -X POST ${base}/login -H 'content-type: application/json' \\`,
    `       -d '{"username":"${config.ADMIN_USERNAME}","password":"<password>"}'`,
  );
  return lines;
}

/** Reads the configuration, or exits with a message naming what is wrong. */
export function configOrExit(env: Record<string, string | undefined> = process.env): Config {
  try {
    return loadConfig(env);
  } catch (error) {
    if (!(error instanceof SettingsError)) throw error;
    console.error(`${error.message}\nRun with --help to see every setting.`);
    process.exit(1);
  }
}

/** Closes `close` on SIGINT or SIGTERM, then exits. */
export function closeOnSignals(logger: Logger, close: () => Promise<void>): void {
  const shutdown = (signal: string) => {
    logger.info({ signal }, 'shutting down');
    void close().then(() => process.exit(0));
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
}

async function main(): Promise<void> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    console.log(HELP);
    return;
  }
  const config = configOrExit();
  const running = await startControlPlane(config);
  console.log([...banner(running, config), ''].join('\n'));
  closeOnSignals(running.services.logger, running.close);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((error) => {
    // A setting found wrong only once the database is open (a weak ADMIN_PASSWORD on the first start).
    console.error(error instanceof SettingsError ? error.message : error);
    process.exit(1);
  });
}
