import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOCKER_LABELS } from '../../runner/drivers/docker.js';
import { WORKER_USER } from '../../runner/images.js';
import { buildComponentImage, buildImages, EXAMPLE_GREETER_IMAGE } from '../../scripts/build-images.js';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { dockerAvailable, testDocker } from '../support/docker.js';
import { waitFor } from '../support/events.js';
import { CONTROL_PLANE_SERVICES, deleteNamespace, rabbitAvailable, rabbitUrl, uniqueNamespace } from '../support/rabbitmq.js';
import { FIXTURES_DIR, runnerAccount, startTestRunner, type TestRunner } from '../support/runner.js';
import { execute, finished, outputsOf, startFlow, stopFlow } from './support.js';

const available = (await rabbitAvailable()) && (await dockerAvailable());

/** test/fixtures/components.ts as a component image, the way buildComponentImage makes a tenant's. */
const FIXTURES_IMAGE = 'hookline-test/fixtures:1';

describe.skipIf(!available)('flows in Docker containers (docker driver, RabbitMQ)', () => {
  const namespace = uniqueNamespace('docker');
  let cp: TestControlPlane;
  let runner: TestRunner;
  let admin: string;
  let runnerToken: string;
  const runnerName = `docker-${namespace}`;
  const docker = testDocker();
  const containersOf = async (runnerName: string) =>
    docker.listContainers({ all: true, filters: { label: [`${DOCKER_LABELS.runner}=${runnerName}`] } });

  beforeAll(async () => {
    await buildImages(['base', 'worker', 'example']);
    cp = await startTestControlPlane({ env: { AMQP_URL: rabbitUrl, BUS_NAMESPACE: namespace, RUNNER_HEARTBEAT_SECONDS: '2' } });
    admin = await cp.login();
    runnerToken = (await runnerAccount(cp)).token;
    runner = await startTestRunner(cp, { token: runnerToken, name: runnerName, driver: 'docker', amqpUrl: rabbitUrl, namespace });
    const greeter = await cp.request('POST', '/components', {
      token: admin,
      body: { name: 'greeter', image: EXAMPLE_GREETER_IMAGE, functions: [{ name: 'greet', kind: 'action' }] },
    });
    expect(greeter.status).toBe(201);
  }, 180_000);
  afterAll(async () => {
    await runner?.stop();
    for (const container of runner ? await containersOf(runner.name) : []) await docker.getContainer(container.Id).remove({ force: true });
    await cp?.close();
    if (available) await deleteNamespace(rabbitUrl, namespace, CONTROL_PLANE_SERVICES);
  });

  it('runs three steps with a fan-out, one container per step, and removes them all when the flow stops', async () => {
    const flow = await startFlow(cp, admin, {
      graph: {
        nodes: [
          { id: 'receive', componentId: 'webhook', function: 'receive' },
          {
            id: 'shout',
            componentId: 'jsonata',
            function: 'map',
            fields: { expression: '$uppercase(name)' },
            nodeSettings: { memoryMb: 128, cpus: 0.25 },
          },
          { id: 'greet', componentId: 'greeter', function: 'greet' },
        ],
        edges: [
          { source: 'receive', target: 'shout' },
          { source: 'receive', target: 'greet' },
        ],
      },
    });
    const containers = await containersOf(runner.name);
    expect(containers.map((c) => c.Labels[DOCKER_LABELS.step]).sort()).toEqual(['greet', 'receive', 'shout']);
    expect(containers.every((c) => c.State === 'running' && c.Labels[DOCKER_LABELS.flow] === flow.id)).toBe(true);
    const shout = await docker.getContainer(containers.find((c) => c.Labels[DOCKER_LABELS.step] === 'shout')!.Id).inspect();
    expect(shout.HostConfig).toMatchObject({ NetworkMode: 'host', Memory: 128 * 1024 * 1024, NanoCpus: 0.25e9 });

    const execution = await finished(cp, admin, await execute(cp, flow, { name: 'Ada' }));
    expect(execution.status).toBe('succeeded');
    expect(outputsOf(execution)).toEqual(
      expect.arrayContaining([
        ['receive', { name: 'Ada' }],
        ['shout', 'ADA'],
        ['greet', { greeting: 'Hello, Ada!' }],
      ]),
    );

    const logs = await waitFor(
      () => cp.request('GET', `/flows/${flow.id}/steps/greet/logs`, { token: admin }),
      (r) => r.status === 200 && r.body.data.some((l: { line: string }) => l.line.includes('step worker ready')),
      15_000,
    );
    expect(logs.body.data[0]).toMatchObject({ stream: expect.stringMatching(/stdout|stderr/), runnerId: runner.id });

    await stopFlow(cp, admin, flow.id);
    expect(await containersOf(runner.name)).toEqual([]);
  }, 120_000);

  it('a runner restarted on its host adopts its containers: the same ones, none twice, and the flow runs on', async () => {
    const flow = await startFlow(cp, admin, {
      graph: {
        nodes: [
          { id: 'receive', componentId: 'webhook', function: 'receive' },
          { id: 'greet', componentId: 'greeter', function: 'greet' },
        ],
        edges: [{ source: 'receive', target: 'greet' }],
      },
    });
    const before = (await containersOf(runner.name)).map((c) => c.Id).sort();
    expect(before).toHaveLength(2);
    await runner.stop();
    expect((await containersOf(runnerName)).map((c) => c.Id).sort()).toEqual(before);
    runner = await startTestRunner(cp, { token: runnerToken, name: runnerName, driver: 'docker', amqpUrl: rabbitUrl, namespace });
    await waitFor(
      () => cp.request('GET', `/runners/${runner.id}`, { token: admin }),
      (r) =>
        r.body.data.deployments.some(
          (d: { flowId: string; generation: number; state: string }) => d.flowId === flow.id && d.generation === 1 && d.state === 'ready',
        ),
      30_000,
    );
    expect((await containersOf(runnerName)).map((c) => c.Id).sort()).toEqual(before);
    const execution = await finished(cp, admin, await execute(cp, flow, { name: 'Grace' }));
    expect(outputsOf(execution)).toContainEqual(['greet', { greeting: 'Hello, Grace!' }]);
    await stopFlow(cp, admin, flow.id);
    expect(await containersOf(runnerName)).toEqual([]);
  }, 120_000);

  it('runs a tenant’s component in a sandboxed container rather than on a process runner that does not trust it; its secrets reach it on stdin, never in docker inspect', async () => {
    await buildComponentImage(FIXTURES_IMAGE, join(FIXTURES_DIR, 'components.ts'));
    // A process runner with far more room, whose operator trusts only the built-ins.
    const untrusting = await startTestRunner(cp, { amqpUrl: rabbitUrl, namespace, trustedModules: '', capacity: 1000 });
    try {
      const crm = await cp.request('POST', '/components', {
        token: admin,
        // The same module for both drivers: in the image, ./component/index.mjs from its working directory (/).
        body: {
          name: 'crm',
          image: FIXTURES_IMAGE,
          module: './component/index.mjs',
          functions: ['credential', 'echo'].map((name) => ({ name, kind: 'action' })),
        },
      });
      expect(crm.status).toBe(201);
      expect(crm.body.data.tenant).not.toBeNull();
      const secret = await cp.request('POST', '/api/v1/secrets', {
        token: admin,
        body: { name: 'crm key', type: 'API_KEY', value: { key: 'k'.repeat(24), headerName: 'x-api-key' } },
      });
      const flow = await startFlow(cp, admin, {
        graph: {
          nodes: [
            { id: 'receive', componentId: 'webhook', function: 'receive' },
            { id: 'secret', componentId: 'crm', function: 'credential', credentials_id: secret.body.data.id },
            { id: 'echo', componentId: 'crm', function: 'echo' },
          ],
          edges: [
            { source: 'receive', target: 'secret' },
            { source: 'receive', target: 'echo' },
          ],
        },
      });
      expect((await cp.request('GET', `/runners/${untrusting.id}`, { token: admin })).body.data.deployments).toEqual([]);
      // A docker runner trusts nothing to run as itself, whatever its RUNNER_TRUSTED_MODULES (test runners list the fixtures).
      expect((await cp.request('GET', `/runners/${runner.id}`, { token: admin })).body.data.trustedModules).toEqual({
        packages: [],
        folders: false,
      });
      const containers = await containersOf(runner.name);
      expect(containers.map((c) => c.Labels[DOCKER_LABELS.step]).sort()).toEqual(['echo', 'receive', 'secret']);

      for (const container of containers) {
        const info = await docker.getContainer(container.Id).inspect();
        expect(info.Config.User).toBe(`${WORKER_USER.uid}:${WORKER_USER.gid}`);
        expect(info.HostConfig).toMatchObject({ ReadonlyRootfs: true, SecurityOpt: ['no-new-privileges'], CapDrop: ['ALL'] });
        expect(info.HostConfig.Memory).toBeGreaterThan(0);
        expect(info.HostConfig.NanoCpus).toBeGreaterThan(0);
        expect(info.HostConfig.PidsLimit).toBeGreaterThan(0);
        // Neither the step token nor the broker's URL (with its password) is anywhere the engine shows.
        const shown = JSON.stringify(info);
        expect(shown).not.toMatch(/hls_/);
        expect(shown).not.toContain(rabbitUrl);
        expect(info.Config.Env.filter((entry) => /amqps?:\/\/|TOKEN/i.test(entry))).toEqual([]);
      }

      // The steps still read their credential (step token) and consume their queues (broker URL): both came on stdin.
      const execution = await finished(cp, admin, await execute(cp, flow, { deal: 7 }));
      expect(execution.status).toBe('succeeded');
      expect(outputsOf(execution)).toEqual(
        expect.arrayContaining([
          ['secret', { fields: ['headerName', 'key'], keyLength: 24 }],
          ['echo', { deal: 7, attempt: 1 }],
        ]),
      );
      await stopFlow(cp, admin, flow.id);
      expect(await containersOf(runner.name)).toEqual([]);
    } finally {
      await untrusting.stop();
    }
  }, 180_000);

  it('fails to start a flow whose image is missing, saying so', async () => {
    const missing = await cp.request('POST', '/components', {
      token: admin,
      body: { name: 'missing', image: 'hookline-test/not-built:1', functions: [{ name: 'run', kind: 'action' }] },
    });
    expect(missing.status).toBe(201);
    const flow = await startFlow(
      cp,
      admin,
      {
        graph: {
          nodes: [
            { id: 'receive', componentId: 'webhook', function: 'receive' },
            { id: 'run', componentId: 'missing', function: 'run' },
          ],
          edges: [{ source: 'receive', target: 'run' }],
        },
      },
      'inactive',
    );
    expect(flow.statusReason).toMatch(/hookline-test\/not-built:1 is not on this runner's Docker engine/);
    expect(await containersOf(runner.name)).toEqual([]);
  }, 60_000);
});
