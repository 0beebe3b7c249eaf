import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { bundleEdgeWorker } from './edge-bundle.js';

/** The edge Worker running on this machine: under `wrangler dev` (development) or workerd itself (self-hosted production). */
export interface LocalEdge {
  kind: EdgeRuntime;
  child: ChildProcess;
  url: string;
  /** SIGTERM, and waits until it exited. */
  stop(): Promise<void>;
}

export const EDGE_RUNTIMES = ['wrangler', 'workerd'] as const;
export type EdgeRuntime = (typeof EDGE_RUNTIMES)[number];

export interface LocalEdgeOptions {
  port: number;
  /** The address it listens on (default 127.0.0.1; 0.0.0.0 to serve other hosts). */
  host?: string;
  /** The Worker's variables and secrets (EDGE_CONTROL_SECRET, CONTROL_PLANE_URL, HOOK_BODY_LIMIT_BYTES). */
  vars: Record<string, string>;
  /** Where its files go: Durable Object storage, the generated configuration, the bundle. */
  dataDir: string;
  logFile: string;
  timeoutMs?: number;
  /** Called while it is not answering yet, about twice a second (to show progress). */
  onWait?: () => void;
}

/**
 * Starts the edge Worker and resolves once it answers `/healthcheck`; rejects with the reason (and
 * the end of its log) when it does not. `wrangler`: `wrangler dev --local`, its variables in
 * `<dataDir>/edge.dev.vars` (mode 600), storage in `<dataDir>/wrangler`. `workerd`: the Worker
 * bundled as wrangler would, served by workerd from a generated configuration
 * (`<dataDir>/workerd/edge.capnp`, mode 600: it holds the secret), Durable Objects stored on local
 * disk in `<dataDir>/workerd/durable-objects`: what a self-hoster runs, without a development proxy.
 */
export async function startLocalEdge(kind: EdgeRuntime, options: LocalEdgeOptions): Promise<LocalEdge> {
  const log = openSync(options.logFile, 'a');
  const child = kind === 'wrangler' ? spawnWrangler(options, log) : await spawnWorkerd(options, log);
  closeSync(log);
  const url = `http://127.0.0.1:${options.port}`;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((done) => child.once('exit', done));
    child.kill('SIGTERM');
    await exited;
  };
  const tail = () => readFileSync(options.logFile, 'utf8').split('\n').slice(-15).join('\n');
  const timeoutMs = options.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${kind} exited (${child.exitCode}); see ${options.logFile}:\n${tail()}`);
    if (
      await fetch(`${url}/healthcheck`).then(
        (r) => r.ok,
        () => false,
      )
    )
      return { kind, child, url, stop };
    options.onWait?.();
    await sleep(500);
  }
  await stop();
  throw new Error(`${kind} did not answer on ${url} within ${Math.round(timeoutMs / 1000)} s; see ${options.logFile}`);
}

function spawnWrangler(options: LocalEdgeOptions, log: number): ChildProcess {
  const envFile = join(options.dataDir, 'edge.dev.vars');
  writeFileSync(
    envFile,
    Object.entries(options.vars)
      .map(([name, value]) => `${name}=${value}\n`)
      .join(''),
    { mode: 0o600 },
  );
  const args = [
    'dev',
    '--local',
    '--ip',
    options.host ?? '127.0.0.1',
    '--port',
    String(options.port),
    '--test-scheduled',
    '--env-file',
    envFile,
  ];
  args.push('--persist-to', join(options.dataDir, 'wrangler'), '--show-interactive-dev-session=false');
  return spawn(process.execPath, ['node_modules/wrangler/bin/wrangler.js', ...args], {
    stdio: ['ignore', log, log],
    env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: 'false', WRANGLER_SEND_METRICS: 'false' },
  });
}

async function spawnWorkerd(options: LocalEdgeOptions, log: number): Promise<ChildProcess> {
  const dir = resolve(options.dataDir, 'workerd');
  mkdirSync(join(dir, 'durable-objects'), { recursive: true });
  await bundleEdgeWorker(join(dir, 'worker.js'));
  const config = join(dir, 'edge.capnp');
  writeFileSync(config, workerdConfig(options), { mode: 0o600 });
  return spawn(workerdBinary(), ['serve', config, '--verbose'], { stdio: ['ignore', log, log] });
}

/** The workerd binary that ships in the `workerd` npm package (wrangler's own). */
export function workerdBinary(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('workerd/package.json')), 'bin', 'workerd');
}

/** What of wrangler.toml the workerd configuration repeats, read from it so the two never differ. */
const WRANGLER = (() => {
  const toml = readFileSync(new URL('../wrangler.toml', import.meta.url), 'utf8');
  const date = /^compatibility_date\s*=\s*"([^"]+)"/m.exec(toml)?.[1];
  const flags = /^compatibility_flags\s*=\s*\[([^\]]*)\]/m.exec(toml)?.[1];
  if (!date || flags === undefined) throw new Error('wrangler.toml has no compatibility_date or compatibility_flags');
  return { compatibilityDate: date, compatibilityFlags: [...flags.matchAll(/"([^"]+)"/g)].map((m) => m[1]!) };
})();

/** wrangler.toml's Worker as a workerd configuration: the same bindings, Durable Objects on local disk, outbound to anywhere. */
function workerdConfig(options: LocalEdgeOptions): string {
  const text = (value: string) => JSON.stringify(value);
  const vars = Object.entries(options.vars).map(([name, value]) => `    (name = ${text(name)}, text = ${text(value)}),`);
  return `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "edge", worker = .edge),
    (name = "storage", disk = (path = ${text(join(resolve(options.dataDir, 'workerd'), 'durable-objects'))}, writable = true)),
    (name = "internet", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [(name = "http", address = ${text(`${options.host ?? '127.0.0.1'}:${options.port}`)}, http = (), service = "edge")],
);

const edge :Workerd.Worker = (
  modules = [(name = "worker.js", esModule = embed "worker.js")],
  compatibilityDate = ${text(WRANGLER.compatibilityDate)},
  compatibilityFlags = [${WRANGLER.compatibilityFlags.map(text).join(', ')}],
  bindings = [
${vars.join('\n')}
    (name = "FLOW_TRIGGERS", durableObjectNamespace = "FlowTrigger"),
    (name = "FLOW_REGISTRY", durableObjectNamespace = "FlowRegistry"),
  ],
  durableObjectNamespaces = [
    (className = "FlowTrigger", uniqueKey = "hookline-flow-trigger", enableSql = true),
    (className = "FlowRegistry", uniqueKey = "hookline-flow-registry", enableSql = true),
  ],
  durableObjectStorage = (localDisk = "storage"),
  globalOutbound = "internet",
);
`;
}
