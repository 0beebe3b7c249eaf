/**
 * `npm start`: the whole system on one machine, on its embedded defaults: the control plane (PGlite,
 * in-process bus), the edge Worker under `wrangler dev` and one runner node, wired to each other.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { eq } from 'drizzle-orm';
import { users } from '../control-plane/iam/schema.js';
import { pino } from 'pino';
import { banner, closeOnSignals, configOrExit, HELP as CONTROL_PLANE_HELP, startControlPlane } from '../control-plane/main.js';
import { loadRunnerConfig, startRunner } from '../runner/main.js';

const { values: args } = parseArgs({ options: { help: { type: 'boolean', short: 'h' }, 'no-edge': { type: 'boolean' } } });
if (args.help) {
  console.log(`Hookline, the whole system on this machine

Usage: npm start [-- --no-edge]

Starts the control plane, the edge Worker (wrangler dev on EDGE_PORT, default 8787) and one
runner node (process driver, in this process, its log in .hookline/runner.log), wired together
with secrets kept in .hookline/. --no-edge leaves the edge Worker out.
The runner runs the built-in components, and a component of your own only once its module is
listed in RUNNER_TRUSTED_MODULES (package names or absolute folders, comma-separated; none by
default): its steps run as your user, with access to .hookline/.
The edge's Cron Trigger (reconcile) does not fire by itself under wrangler dev: this script
calls it every minute.

${CONTROL_PLANE_HELP.split('\n').slice(3).join('\n')}
  EDGE_PORT               the port of wrangler dev (default 8787)
  RUNNER_TRUSTED_MODULES  what the runner runs besides the built-ins (default: nothing)`);
  process.exit(0);
}

const DATA = '.hookline';
mkdirSync(DATA, { recursive: true });
const withEdge = !args['no-edge'];
const edgePort = Number(process.env.EDGE_PORT ?? 8787);
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
const config = configOrExit({ ...process.env, ...(withEdge ? { EDGE_URL: process.env.EDGE_URL ?? edgeUrl, EDGE_CONTROL_SECRET: edgeSecret } : {}) });
const running = await startControlPlane(config);

/** wrangler dev, its output in .hookline/wrangler.log; resolves once the Worker answers, or null with the reason. */
async function startEdge(): Promise<{ child: ChildProcess } | { error: string }> {
  const envFile = `${DATA}/edge.dev.vars`;
  writeFileSync(envFile, `EDGE_CONTROL_SECRET=${edgeSecret}\nCONTROL_PLANE_URL=${running.url}\n`, { mode: 0o600 });
  const logFile = `${DATA}/wrangler.log`;
  const log = openSync(logFile, 'w');
  const child = spawn(
    process.execPath,
    ['node_modules/wrangler/bin/wrangler.js', 'dev', '--local', '--ip', '127.0.0.1', '--port', String(edgePort), '--test-scheduled', '--env-file', envFile, '--persist-to', `${DATA}/wrangler`, '--show-interactive-dev-session=false'],
    { stdio: ['ignore', log, log], env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: 'false', WRANGLER_SEND_METRICS: 'false' } },
  );
  closeSync(log);
  const started = Date.now();
  process.stdout.write('Starting the edge Worker (wrangler dev) ');
  while (Date.now() - started < 60_000) {
    if (child.exitCode !== null) return { error: `wrangler dev exited (${child.exitCode}); see ${logFile}:\n${readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n')}` };
    const up = await fetch(`${edgeUrl}/healthcheck`).then((r) => r.ok, () => false);
    if (up) {
      process.stdout.write(' ready\n');
      return { child };
    }
    process.stdout.write('.');
    await sleep(500);
  }
  child.kill('SIGTERM');
  return { error: `wrangler dev did not answer on ${edgeUrl} within 60 s; see ${logFile}` };
}

/**
 * The local runner's service token: the account `local-runner`, of no tenant (so it runs every
 * tenant's flows), with runners.write, and a token kept in .hookline/ (minted again if it no
 * longer authenticates).
 */
async function localRunnerToken(): Promise<string> {
  const file = `${DATA}/runner-token`;
  const { db, tokens } = running.services;
  await db.insert(users).values({ username: 'local-runner', kind: 'service', tenantId: null, permissions: ['runners.write', 'runners.read'] }).onConflictDoNothing();
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
  const { token } = await tokens.issueServiceToken(db, { userId: account!.id, description: 'the runner npm start runs', createdBy: account!.id });
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return token;
}

/**
 * One runner node with the process driver, in this process: on the in-process bus it shares the
 * control plane's (its queues in memory), on RabbitMQ when AMQP_URL is set. Its log: .hookline/runner.log.
 */
async function startLocalRunner() {
  const runnerConfig = loadRunnerConfig({ ...process.env, CONTROL_PLANE_URL: running.url, RUNNER_TOKEN: await localRunnerToken(), RUNNER_NAME: 'local', RUNNER_DRIVER: 'process', BUS_NAMESPACE: config.BUS_NAMESPACE });
  const logger = pino({ level: runnerConfig.LOG_LEVEL, base: { service: 'runner' } }, pino.destination({ dest: `${DATA}/runner.log`, mkdir: true }));
  return startRunner(runnerConfig, logger, { events: running.services.bus });
}

const reconcile = () => fetch(`${edgeUrl}/__scheduled?cron=*+*+*+*+*`).catch(() => undefined);

const edge = withEdge ? await startEdge() : null;
const runner = await startLocalRunner();
const lines = banner(running, config);
lines.splice(7, 0, `  Runner      local (process driver; log in ${DATA}/runner.log)`);
if (edge && 'child' in edge) {
  await reconcile();
  setInterval(reconcile, 60_000).unref();
  lines.splice(7, 0, `  Webhooks    ${edgeUrl}/hook/<flowId>   (the edge Worker, wrangler dev; log in ${DATA}/wrangler.log)`);
} else if (edge) {
  lines.splice(7, 0, `  Webhooks    unavailable: ${edge.error}`);
}
console.log([...lines, ''].join('\n'));

const stopChild = async (child: ChildProcess) => {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
};
closeOnSignals(running.services.logger, async () => {
  await runner.stop();
  if (edge && 'child' in edge) await stopChild(edge.child);
  await running.close();
});
