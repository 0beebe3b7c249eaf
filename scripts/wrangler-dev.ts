import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface WranglerDev {
  child: ChildProcess;
  url: string;
  /** SIGTERM, and waits until it exited. */
  stop(): Promise<void>;
}

/**
 * The edge Worker under `wrangler dev` (workerd, locally), as npm start runs it and as the tests
 * that need the real dev server start it: its variables in `<dataDir>/edge.dev.vars` (mode 600),
 * Durable Object storage in `<dataDir>/wrangler`, its output in `logFile`. Resolves once the
 * Worker answers; rejects with the reason (and the end of the log) when it does not.
 */
export async function startWranglerDev(options: {
  port: number;
  vars: Record<string, string>;
  dataDir: string;
  logFile: string;
  timeoutMs?: number;
  onWait?: () => void;
}): Promise<WranglerDev> {
  const envFile = join(options.dataDir, 'edge.dev.vars');
  writeFileSync(
    envFile,
    Object.entries(options.vars)
      .map(([name, value]) => `${name}=${value}\n`)
      .join(''),
    { mode: 0o600 },
  );
  const log = openSync(options.logFile, 'w');
  const child = spawn(
    process.execPath,
    [
      'node_modules/wrangler/bin/wrangler.js',
      'dev',
      '--local',
      '--ip',
      '127.0.0.1',
      '--port',
      String(options.port),
      '--test-scheduled',
      '--env-file',
      envFile,
      '--persist-to',
      join(options.dataDir, 'wrangler'),
      '--show-interactive-dev-session=false',
    ],
    { stdio: ['ignore', log, log], env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: 'false', WRANGLER_SEND_METRICS: 'false' } },
  );
  closeSync(log);
  const url = `http://127.0.0.1:${options.port}`;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  };
  const tail = () => readFileSync(options.logFile, 'utf8').split('\n').slice(-15).join('\n');
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited (${child.exitCode}); see ${options.logFile}:\n${tail()}`);
    if (
      await fetch(`${url}/healthcheck`).then(
        (r) => r.ok,
        () => false,
      )
    )
      return { child, url, stop };
    options.onWait?.();
    await sleep(500);
  }
  await stop();
  throw new Error(
    `wrangler dev did not answer on ${url} within ${Math.round((options.timeoutMs ?? 60_000) / 1000)} s; see ${options.logFile}`,
  );
}
