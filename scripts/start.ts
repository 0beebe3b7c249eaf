/**
 * `npm start`: the whole system on one machine, on its embedded defaults: the control plane (PGlite,
 * in-process bus), the edge Worker under `wrangler dev` and one runner node, wired to each other.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { eq } from 'drizzle-orm';
import { users } from '../control-plane/iam/schema.js';
import { pino } from 'pino';
import { z } from 'zod';
import { MemoryBus } from '../control-plane/bus/memory.js';
import { CONTROL_PLANE_SETTINGS } from '../control-plane/config.js';
import { banner, closeOnSignals, configOrExit, startControlPlane } from '../control-plane/main.js';
import { signPeerToken } from '../protocol/peer-token.js';
import { parseSettings, port, SettingsError, settingsHelp, type SettingsOf, type SettingsTable } from '../protocol/settings.js';
import { loadRunnerConfig, RUNNER_SETTINGS, startRunner } from '../runner/main.js';
import { EDGE_RUNTIMES, startLocalEdge, type EdgeRuntime, type LocalEdge } from './local-edge.js';

/** npm start's own settings; the control plane's (CONTROL_PLANE_SETTINGS) apply too. */
const START_SETTINGS = {
  EDGE_PORT: { schema: port.default(8787), help: "the edge Worker's port" },
  HOOKLINE_DATA_DIR: {
    schema: z.string().min(1).default('.hookline'),
    help: "where npm start keeps what it makes: the edge's storage and logs, the runner's token and log",
  },
  RUNNER_TRUSTED_MODULES: RUNNER_SETTINGS.RUNNER_TRUSTED_MODULES,
} satisfies SettingsTable;

const { values: args } = parseArgs({
  options: { help: { type: 'boolean', short: 'h' }, 'no-edge': { type: 'boolean' }, edge: { type: 'string', default: 'wrangler' } },
});
if (args.help) {
  console.log(`Hookline, the whole system on this machine

Usage: npm start [-- --edge=wrangler|workerd | --no-edge]

Starts the control plane, the edge Worker (on EDGE_PORT, default 8787) and one runner node
(process driver, in this process, its log in .hookline/runner.log), wired together with secrets
kept in .hookline/. The edge runs under wrangler dev (--edge=wrangler, the default), or under
workerd itself (--edge=workerd: what a self-hoster runs in production, Durable Objects on local
disk in .hookline/workerd/); --no-edge leaves it out.
The runner runs the built-in components, and a component of your own only once its module is
listed in RUNNER_TRUSTED_MODULES (package names or absolute folders, comma-separated; none by
default): its steps run as your user, with access to .hookline/.
The edge's Cron Trigger (reconcile) does not fire by itself locally: this script calls it every
minute.

Configuration comes from the environment: the control plane's settings, and npm start's own.
${settingsHelp(CONTROL_PLANE_SETTINGS)}
${settingsHelp(START_SETTINGS)}`);
  process.exit(0);
}

let settings: SettingsOf<typeof START_SETTINGS>;
try {
  settings = parseSettings(START_SETTINGS, process.env);
} catch (error) {
  if (!(error instanceof SettingsError)) throw error;
  console.error(`${error.message}\nRun with --help to see every setting.`);
  process.exit(1);
}
const DATA = settings.HOOKLINE_DATA_DIR;
mkdirSync(DATA, { recursive: true });
const withEdge = !args['no-edge'];
if (!(EDGE_RUNTIMES as readonly string[]).includes(args.edge!)) {
  console.error(`--edge must be one of ${EDGE_RUNTIMES.join(', ')}, not ${args.edge}`);
  process.exit(2);
}
const edgeRuntime = args.edge as EdgeRuntime;
const edgePort = settings.EDGE_PORT;
const edgeUrl = `http://127.0.0.1:${edgePort}`;

/** The secret the control plane and the local Worker share, made once and kept. */
function localEdgeSecret(): string {
  const file = `${DATA}/edge-control-secret`;
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    const secret = randomBytes(32).toString('base64url');
    writeFileSync(file, `${secret}\n`, { mode: 0o600 });
    return secret;
  }
}

const edgeSecret = process.env.EDGE_CONTROL_SECRET ?? localEdgeSecret();
const config = configOrExit({
  ...process.env,
  ...(withEdge ? { EDGE_URL: process.env.EDGE_URL ?? edgeUrl, EDGE_CONTROL_SECRET: edgeSecret } : {}),
});
const running = await startControlPlane(config);

const edgeLog = `${DATA}/${edgeRuntime}.log`;

/** The edge Worker, its output in .hookline/<runtime>.log; resolves once it answers, or with the reason it does not. */
async function startEdge(): Promise<LocalEdge | { error: string }> {
  process.stdout.write(`Starting the edge Worker (${edgeRuntime}) `);
  try {
    const dev = await startLocalEdge(edgeRuntime, {
      port: edgePort,
      vars: { EDGE_CONTROL_SECRET: edgeSecret, CONTROL_PLANE_URL: running.url },
      dataDir: DATA,
      logFile: edgeLog,
      onWait: () => process.stdout.write('.'),
    });
    process.stdout.write(' ready\n');
    return dev;
  } catch (error) {
    process.stdout.write('\n');
    return { error: (error as Error).message };
  }
}

/**
 * The local runner's service token: the account `local-runner`, of no tenant (so it runs every
 * tenant's flows), with runners.write, and a token kept in .hookline/ (minted again if it no
 * longer authenticates).
 */
async function localRunnerToken(): Promise<string> {
  const file = `${DATA}/runner-token`;
  const { db, tokens } = running.services;
  await db
    .insert(users)
    .values({ username: 'local-runner', kind: 'service', tenantId: null, permissions: ['runners.write', 'runners.read'] })
    .onConflictDoNothing();
  // Before runners could be platform-wide, the local runner belonged to tenant default.
  await db.update(users).set({ tenantId: null }).where(eq(users.username, 'local-runner'));
  try {
    const kept = readFileSync(file, 'utf8').trim();
    await tokens.authenticate(kept);
    return kept;
  } catch {
    // none yet, or revoked: mint one
  }
  const [account] = await db.select({ id: users.id }).from(users).where(eq(users.username, 'local-runner'));
  const { token } = await tokens.issueServiceToken(db, {
    userId: account!.id,
    description: 'the runner npm start runs',
    createdBy: account!.id,
  });
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return token;
}

/**
 * One runner node with the process driver, in this process: on the in-process bus it shares the
 * control plane's (its queues in memory), on RabbitMQ when AMQP_URL is set. Its log: .hookline/runner.log.
 */
async function startLocalRunner() {
  const runnerConfig = loadRunnerConfig({
    ...process.env,
    CONTROL_PLANE_URL: running.url,
    RUNNER_TOKEN: await localRunnerToken(),
    RUNNER_NAME: 'local',
    RUNNER_DRIVER: 'process',
    BUS_NAMESPACE: config.BUS_NAMESPACE,
  });
  const logger = pino(
    { level: runnerConfig.LOG_LEVEL, base: { service: 'runner' } },
    pino.destination({ dest: `${DATA}/runner.log`, mkdir: true }),
  );
  const bus = running.services.bus;
  return startRunner(runnerConfig, logger, { events: bus instanceof MemoryBus ? bus : undefined });
}

/** What the Cron Trigger does on Cloudflare: wrangler dev runs it on request, workerd through the control API. */
const reconcile = async () => {
  const request =
    edgeRuntime === 'wrangler'
      ? fetch(`${edgeUrl}/__scheduled?cron=*+*+*+*+*`)
      : fetch(`${edgeUrl}/control/reconcile`, {
          method: 'POST',
          headers: { authorization: `Bearer ${await signPeerToken(edgeSecret, 'control-plane')}` },
        });
  await request.then((r) => r.arrayBuffer()).catch(() => undefined);
};

const edge = withEdge ? await startEdge() : null;
const runner = await startLocalRunner();
const lines = banner(running, config);
lines.splice(7, 0, `  Runner      local (process driver; log in ${DATA}/runner.log)`);
if (edge && 'stop' in edge) {
  await reconcile();
  setInterval(reconcile, 60_000).unref();
  lines.splice(
    7,
    0,
    `  Webhooks    ${edgeUrl}/hook/<flowId>   (the edge Worker, ${edgeRuntime === 'wrangler' ? 'wrangler dev' : 'workerd'}; log in ${edgeLog})`,
  );
} else if (edge) {
  lines.splice(7, 0, `  Webhooks    unavailable: ${edge.error}`);
}
console.log([...lines, ''].join('\n'));

closeOnSignals(running.services.logger, async () => {
  await runner.stop();
  if (edge && 'stop' in edge) await edge.stop();
  await running.close();
});
