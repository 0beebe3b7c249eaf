import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import { access, constants, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { waitFor } from './events.js';
import { serviceAvailable } from './services.js';

const DOCKERD = '/usr/sbin/dockerd';

/** Whether this machine can run a Docker engine of a test's own: dockerd is installed and we are root. */
export const privateDockerdAvailable = () =>
  serviceAvailable('a private dockerd (root and /usr/sbin/dockerd)', async () => {
    if (process.getuid?.() !== 0) throw new Error('not root');
    await access(DOCKERD, constants.X_OK);
  });

export interface PrivateDockerd {
  /** Its socket, for DOCKER_HOST. */
  host: string;
  docker: Docker;
  /** Starts it (again, on the same data) and waits until it answers. */
  start(): Promise<void>;
  /** SIGTERM, as an operator restarting the engine: it stops its containers first. */
  stop(): Promise<void>;
  /** Stops it and deletes its data. */
  dispose(): Promise<void>;
}

/**
 * A Docker engine of its own, started as .ci/run starts one: nothing changes on the host's network
 * (no bridge, no iptables rules, no forwarding; containers use host networking), its data, state,
 * socket and log in a temporary folder. `images` are copied in from the engine DOCKER_HOST names
 * (no registry here), once: they stay in its data across restarts.
 */
export async function startPrivateDockerd(images: string[]): Promise<PrivateDockerd> {
  const dir = await mkdtemp(join(tmpdir(), 'hookline-dockerd-'));
  const socket = join(dir, 'docker.sock');
  const docker = new Docker({ socketPath: socket });
  let child: ChildProcess | undefined;
  const engine: PrivateDockerd = {
    host: `unix://${socket}`,
    docker,
    async start() {
      const log = openSync(join(dir, 'log'), 'a');
      const args = ['--bridge=none', '--iptables=false', '--ip-forward=false', '--ip6tables=false'];
      args.push('--data-root', join(dir, 'data'), '--exec-root', join(dir, 'exec'), '--pidfile', join(dir, 'dockerd.pid'));
      args.push('-H', `unix://${socket}`);
      const started = spawn(DOCKERD, args, { stdio: ['ignore', log, log] });
      child = started;
      closeSync(log);
      await waitFor(
        async () => {
          if (started.exitCode !== null)
            throw new Error(`dockerd exited (${started.exitCode}):\n${await readFile(join(dir, 'log'), 'utf8')}`);
          return docker.ping().then(
            () => true,
            () => false,
          );
        },
        (answers) => answers,
        120_000,
      );
    },
    async stop() {
      const running = child;
      child = undefined;
      if (!running || running.exitCode !== null || running.signalCode !== null) return;
      const exited = once(running, 'exit');
      running.kill('SIGTERM');
      await exited;
    },
    async dispose() {
      await engine.stop();
      // dockerd leaves its network namespace mounted in its exec root: unmounted before the folder goes.
      const mounts = (await readFile('/proc/mounts', 'utf8'))
        .split('\n')
        .map((line) => line.split(' ')[1] ?? '')
        .filter((path) => path.startsWith(dir))
        .sort()
        .reverse();
      for (const path of mounts) await new Promise((done) => spawn('umount', ['-l', path]).on('exit', done));
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    await engine.start();
    const source = new Docker();
    for (const image of images) {
      const saved = await source.getImage(image).get();
      await new Promise<void>((resolve, reject) =>
        docker.loadImage(saved, {}, (error, output) => {
          if (error || !output) return reject(error ?? new Error(`loading ${image} answered nothing`));
          output.resume();
          output.on('end', () => resolve());
          output.on('error', reject);
        }),
      );
    }
  } catch (error) {
    await engine.dispose();
    throw error;
  }
  return engine;
}
