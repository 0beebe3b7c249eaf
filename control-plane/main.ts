import { serve } from '@hono/node-server';
import { pathToFileURL } from 'node:url';
import { OutboundPolicy } from '../protocol/outbound.js';
import { createApp } from './app.js';
import { subscribeAuditLog } from './audit/events.js';
import { seedBuiltinComponents } from './components/builtins.js';
import { createBus } from './bus/index.js';
import { OutboxRelay } from './bus/relay.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { openDatabase, type OpenOptions } from './db/index.js';
import { subscribeEdgeBridge } from './edge/bridge.js';
import { subscribeFlowRepository } from './flows/events.js';
import { bootstrapIam } from './iam/bootstrap.js';
import { loadSigningKey } from './iam/keys.js';
import { TokenService } from './iam/tokens.js';
import { KeyRing, loadMasterKeys } from './secrets/keys.js';
import { subscribeSecrets } from './secrets/events.js';
import { subscribeExecutions } from './executions/events.js';
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
  const relay = new OutboxRelay(db, bus, logger);
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

export const HELP = `Hookline control plane

Usage: npx tsx control-plane/main.ts   (npm start runs it with the edge Worker: scripts/start.ts)

Runs on embedded defaults with no set-up: PGlite in .hookline/pglite and the in-process event bus.
Configuration comes from the environment:
  PORT, HOST              where to listen (default 127.0.0.1:3000)
  PUBLIC_URL              the URL to print and link to (default http://HOST:PORT)
  DATABASE_URL            postgres://... to use PostgreSQL (node-postgres)
  DATABASE_DRIVER         pglite | pg | neon (Neon's serverless driver for DATABASE_URL)
  PGLITE_DIR              PGlite's data folder (default .hookline/pglite)
  AMQP_URL                amqp://... to use RabbitMQ instead of the in-process bus
  BUS_NAMESPACE           prefix of the exchange and queues (default hookline)
  JWT_ALGORITHM           HS256 (default) | RS256 | EdDSA
  JWT_SECRET              HS256 key; JWT_PRIVATE_KEY: PKCS#8 PEM for RS256/EdDSA (default: generated, kept in the database)
  TOKEN_TTL_SECONDS       lifetime of login tokens (default 3600)
  ADMIN_USERNAME          the first admin, created on first start (default admin@hookline.local)
  ADMIN_PASSWORD          its password, on the first start: 12+ characters, not easy to guess (default: generated, printed once)
  SECRETS_MASTER_KEY      <id>:<32 bytes base64>, wraps the keys of secrets (default: generated into .hookline/)
  SECRETS_OLD_MASTER_KEYS former master keys, comma-separated, during a rotation
  AUDIT_RETENTION_DAYS    audit records are kept this many days (default 365; 0: forever)
  RUNNER_HEARTBEAT_SECONDS  how often runners report (default 2); silent for 3 intervals: lost
  EXECUTION_MAX_MESSAGES  messages one execution may make between its steps (default 100000)
  SHARED_RUNNER_STEPS_PER_TENANT  step workers one tenant may hold on platform-wide runners (default 64)
  SHARED_RUNNER_FLOWS_PER_TENANT  flows one tenant may run on platform-wide runners (default 32)
  STEP_LOG_RETENTION_DAYS step logs are kept this many days (default 7)
  EDGE_URL                the edge Worker's URL, where flow triggers are pushed
  EDGE_CONTROL_SECRET     shared with the Worker (wrangler secret): signs the calls between them
  OUTBOUND_ALLOWED_NETWORKS  private networks that calls made for tenants may reach (OAuth2 token
                          requests; under npm start the runner's steps too), CIDRs such as
                          127.0.0.1/32,10.0.0.0/8 (default none: loopback, link-local and private
                          addresses are refused, after DNS and at every redirect)
  LOG_LEVEL               fatal | error | warn | info (default) | debug | trace | silent
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
    if (!(error instanceof ConfigError)) throw error;
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
    console.error(error instanceof ConfigError ? error.message : error);
    process.exit(1);
  });
}
