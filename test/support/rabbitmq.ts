import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, constants, openSync } from 'node:fs';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from 'amqplib';
import { entryExchange } from '../../protocol/fleet.js';
import { serviceAvailable } from './services.js';
import { freePort } from './ports.js';

/** A RabbitMQ broker the tests may declare exchanges and queues on (each test file in its own namespace). */
export const rabbitUrl = process.env.TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

export const rabbitAvailable = () => serviceAvailable('RabbitMQ', async () => (await connect(rabbitUrl)).close());

export const uniqueNamespace = (prefix = 't') => `${prefix}_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;

/** The services a control plane consumes as, each with a queue on the bus. */
export const CONTROL_PLANE_SERVICES = ['flow-repository', 'audit-log', 'secrets', 'edge-bridge', 'executions', 'fleet'];

/** Deletes what a RabbitBus in `namespace` declared for `services`, and the runner fleet's entry exchange. */
export async function deleteNamespace(url: string, namespace: string, services: string[]): Promise<void> {
  const connection = await connect(url);
  const channel = await connection.createChannel();
  for (const service of services) {
    await channel.deleteQueue(`${namespace}.${service}`);
    await channel.deleteQueue(`${namespace}.${service}.dead-letter`);
  }
  await channel.deleteExchange(entryExchange(namespace));
  await channel.deleteExchange(`${namespace}.events`);
  await channel.deleteExchange(`${namespace}.dead-letter`);
  await connection.close();
}

// The Debian package's script itself, not the /usr/sbin wrapper, which switches to the rabbitmq
// user and so could not write the node's temporary directory.
const RABBITMQ_SERVER = '/usr/lib/rabbitmq/bin/rabbitmq-server';

export const privateBrokerAvailable = () => serviceAvailable('rabbitmq-server', () => access(RABBITMQ_SERVER, constants.X_OK));

/** How long a private node may take to accept connections; tests that start one allow for it (PRIVATE_BROKER_TIMEOUT_MS). */
const BROKER_START_MS = 150_000;
/** A timeout for a hook or test that starts a private node once (or twice: double it). */
export const PRIVATE_BROKER_TIMEOUT_MS = BROKER_START_MS + 60_000;

export interface PrivateBroker {
  url: string;
  /** Starts the node (again, on the same data) and waits until it accepts connections. */
  start(): Promise<void>;
  /** Stops the node cleanly, as an operator restarting the broker would. */
  stop(): Promise<void>;
  /** Stops the node and deletes its data. */
  dispose(): Promise<void>;
}

/**
 * A RabbitMQ node of its own, for tests that stop and start a broker without disturbing the shared
 * one: its own node name, ports, data, logs and Erlang cookie, all in a temporary directory.
 */
export async function startPrivateBroker(): Promise<PrivateBroker> {
  const dir = await mkdtemp(join(tmpdir(), 'hookline-rabbitmq-'));
  const port = await freePort();
  await writeFile(join(dir, 'rabbitmq.conf'), `listeners.tcp.1 = 127.0.0.1:${port}\n`);
  await writeFile(join(dir, 'enabled_plugins'), '[].\n');
  const env = {
    ...process.env,
    HOME: dir, // where Erlang keeps the node's cookie
    RABBITMQ_NODENAME: `hookline-test-${Math.random().toString(36).slice(2, 10)}@localhost`,
    RABBITMQ_DIST_PORT: String(await freePort()),
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_PID_FILE: join(dir, 'rabbitmq.pid'),
  };
  const url = `amqp://guest:guest@127.0.0.1:${port}`;
  const output = join(dir, 'output.log');
  let server: ChildProcess | undefined;

  const broker: PrivateBroker = {
    url,
    async start() {
      const log = openSync(output, 'a');
      // Its working directory is its own, so crash dumps (erl_crash.dump, MnesiaCore.*) never land in the checkout.
      const child = spawn(RABBITMQ_SERVER, [], { env, cwd: dir, stdio: ['ignore', log, log] });
      closeSync(log);
      server = child;
      // Erlang boots in a few seconds on an idle machine and far slower on a busy one: the limit only catches a node that never comes up.
      const deadline = Date.now() + BROKER_START_MS;
      while (!(await accepts(url))) {
        if (!running(child)) throw new Error(`rabbitmq-server exited:\n${await readFile(output, 'utf8')}`);
        if (Date.now() > deadline)
          throw new Error(
            `rabbitmq-server did not accept connections within ${BROKER_START_MS / 1000} s:\n${await readFile(output, 'utf8')}`,
          );
        await sleep(200);
      }
    },
    async stop() {
      const child = server;
      server = undefined;
      if (!child || !running(child)) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM'); // the start script traps it and shuts the node down cleanly
      await exited;
    },
    async dispose() {
      await broker.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    await broker.start();
  } catch (error) {
    await broker.dispose();
    throw error;
  }
  return broker;
}

const running = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

const accepts = (url: string) =>
  connect(url).then(
    (connection) => connection.close().then(() => true),
    () => false,
  );
