import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImages } from '../../scripts/build-images.js';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { dockerAvailable, removeRunnerContainers, testDocker } from '../support/docker.js';
import { CONTROL_PLANE_SERVICES, deleteNamespace, rabbitAvailable, rabbitUrl, uniqueNamespace } from '../support/rabbitmq.js';
import { startTestRunner, type TestRunner } from '../support/runner.js';
import { execute, finished, outputsOf, startFlow, stopFlow } from './support.js';

/**
 * The http built-in in real step workers of a runner started with OUTBOUND_ALLOWED_NETWORKS=127.0.0.1/32,
 * calling a server on 127.0.0.1 (allowed) and on 127.0.0.2 (loopback too, not allowed).
 */
function outboundCases(start: () => Promise<{ cp: TestControlPlane; runner: TestRunner; close?: () => Promise<void> }>) {
  let cp: TestControlPlane;
  let runner: TestRunner;
  let close: (() => Promise<void>) | undefined;
  let admin: string;
  let server: Server;
  let port: number;
  let calls = 0;

  beforeAll(async () => {
    server = createServer((_req, res) => {
      calls++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    ({ cp, runner, close } = await start());
    admin = await cp.login();
  }, 180_000);
  afterAll(async () => {
    await runner?.stop();
    await cp?.close();
    await close?.();
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
  });

  const call = (url: string) =>
    startFlow(cp, admin, {
      graph: {
        nodes: [
          { id: 'receive', componentId: 'webhook', function: 'receive' },
          { id: 'call', componentId: 'http', function: 'request', fields: { url } },
        ],
        edges: [{ source: 'receive', target: 'call' }],
      },
    });

  it('an http step reaches the network the runner allows', async () => {
    const flow = await call(`http://127.0.0.1:${port}/orders`);
    const execution = await finished(cp, admin, await execute(cp, flow, {}), 60_000);
    expect(execution.status).toBe('succeeded');
    expect(outputsOf(execution)).toContainEqual(['call', expect.objectContaining({ status: 200, body: { ok: true } })]);
    await stopFlow(cp, admin, flow.id);
  }, 120_000);

  it('and fails an input, without retrying it, for an address outside it', async () => {
    const before = calls;
    const flow = await call(`http://127.0.0.2:${port}/orders`);
    const execution = await finished(cp, admin, await execute(cp, flow, {}), 60_000);
    expect(execution.status).toBe('failed');
    expect(execution.errors).toEqual([
      expect.objectContaining({
        stepId: 'call',
        attempts: 1,
        error: expect.objectContaining({
          message: expect.stringMatching(
            /^GET http:\/\/127\.0\.0\.2:\d+\/orders: 127\.0\.0\.2 is a private address \(loopback\); .*\(OUTBOUND_ALLOWED_NETWORKS\)$/,
          ),
        }),
      }),
    ]);
    expect(calls).toBe(before);
    await stopFlow(cp, admin, flow.id);
  }, 120_000);
}

describe('a runner passes OUTBOUND_ALLOWED_NETWORKS to its step workers: processes (embedded defaults)', () => {
  outboundCases(async () => {
    const cp = await startTestControlPlane();
    return { cp, runner: await startTestRunner(cp, { outboundAllowedNetworks: '127.0.0.1/32' }) };
  });
});

const dockerRuns = (await rabbitAvailable()) && (await dockerAvailable());

describe.skipIf(!dockerRuns)('a runner passes OUTBOUND_ALLOWED_NETWORKS to its step workers: containers (docker driver, RabbitMQ)', () => {
  outboundCases(async () => {
    const namespace = uniqueNamespace('outbound');
    await buildImages(['base', 'worker']);
    const cp = await startTestControlPlane({ env: { AMQP_URL: rabbitUrl, BUS_NAMESPACE: namespace } });
    const runner = await startTestRunner(cp, { driver: 'docker', amqpUrl: rabbitUrl, namespace, outboundAllowedNetworks: '127.0.0.1/32' });
    const close = async () => {
      await removeRunnerContainers(testDocker(), [runner.name]);
      await deleteNamespace(rabbitUrl, namespace, CONTROL_PLANE_SERVICES);
    };
    return { cp, runner, close };
  });
});
