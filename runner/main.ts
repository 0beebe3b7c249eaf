/**
 * A runner node: registers with the control plane under its service account and reports every
 * HEARTBEAT_SECONDS that it is alive and what it runs. Deploying steps comes with the runner fleet
 * issue; this is the node's lifeline to the control plane.
 */
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { pino, type Logger } from 'pino';
import { z } from 'zod';
import { HEARTBEAT_SECONDS, RUNNER_DRIVERS, type Heartbeat } from '../protocol/runner.js';

const configSchema = z.object({
  CONTROL_PLANE_URL: z.url({ message: 'must be the control plane’s URL, such as http://127.0.0.1:3000' }),
  RUNNER_TOKEN: z.string().regex(/^hlk_/, 'must be a service-account token (hlk_...) with runners.write'),
  RUNNER_NAME: z.string().regex(/^[A-Za-z0-9._-]+$/, 'must be letters, digits, . _ or -').default(hostname().replace(/[^A-Za-z0-9._-]/g, '-')),
  RUNNER_DRIVER: z.enum(RUNNER_DRIVERS).default('process'),
  RUNNER_CAPACITY: z.coerce.number().int().min(1).default(16),
  LOG_LEVEL: z.string().default('info'),
});
export type RunnerConfig = z.infer<typeof configSchema>;

const HELP = `Hookline runner node

Usage: npx tsx runner/main.ts
  CONTROL_PLANE_URL   the control plane (required)
  RUNNER_TOKEN        a service-account token with runners.write (required; POST /api/v1/tokens)
  RUNNER_NAME         this node's name, unique per account (default: the host name)
  RUNNER_DRIVER       process (default) | docker
  RUNNER_CAPACITY     how many step workers it takes (default 16)
  LOG_LEVEL           info (default), debug, warn...`;

export interface RunningRunner {
  id: string;
  stop(): Promise<void>;
}

/** Registers (retrying while the control plane is unreachable), then heartbeats until stopped. */
export async function startRunner(config: RunnerConfig, logger: Logger): Promise<RunningRunner> {
  const call = async (path: string, body: unknown) => {
    const response = await fetch(new URL(path, config.CONTROL_PLANE_URL), {
      method: 'POST',
      headers: { authorization: `Bearer ${config.RUNNER_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const answer = (await response.json().catch(() => null)) as { data?: { id: string }; errors?: { message: string }[] } | null;
    if (!response.ok) throw new Error(`${path}: ${response.status} ${answer?.errors?.map((e) => e.message).join('; ') ?? ''}`);
    return answer!.data!;
  };
  const registration = { name: config.RUNNER_NAME, host: hostname(), driver: config.RUNNER_DRIVER, capacity: config.RUNNER_CAPACITY, version: '0.1.0' };

  let id: string | undefined;
  for (let attempt = 1; !id; attempt++) {
    try {
      id = (await call('/runners', registration)).id;
    } catch (error) {
      const wait = Math.min(30_000, 500 * 2 ** attempt);
      logger.warn({ err: (error as Error).message, retryInMs: wait }, 'cannot register with the control plane yet');
      await sleep(wait);
    }
  }
  logger.info({ runnerId: id, name: config.RUNNER_NAME, driver: config.RUNNER_DRIVER }, 'runner registered');

  const running: Heartbeat['running'] = [];
  const timer = setInterval(() => {
    call(`/runners/${id}/heartbeat`, { running }).catch((error: Error) => logger.warn({ err: error.message }, 'heartbeat failed; trying again at the next one'));
  }, HEARTBEAT_SECONDS * 1000);
  return {
    id,
    async stop() {
      clearInterval(timer);
      logger.info({ runnerId: id }, 'runner stopped');
    },
  };
}

async function main(): Promise<void> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    console.log(HELP);
    return;
  }
  const parsed = configSchema.safeParse(Object.fromEntries(Object.entries(process.env).filter(([, v]) => v !== '')));
  if (!parsed.success) {
    console.error(`Invalid configuration:\n${parsed.error.issues.map((i) => `  ${String(i.path[0])}: ${i.message}`).join('\n')}\nRun with --help to see every setting.`);
    process.exit(1);
  }
  const logger = pino({ level: parsed.data.LOG_LEVEL, base: { service: 'runner' }, redact: ['token', '*.token'] });
  const runner = await startRunner(parsed.data, logger);
  const stop = () => void runner.stop().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
