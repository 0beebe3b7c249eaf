import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { startTestRunner, type TestRunner } from '../support/runner.js';
import { execute, finished, outputsOf, startFlow, stopFlow } from './support.js';

describe('a runner passes OUTBOUND_ALLOWED_NETWORKS to its step workers', () => {
  let cp: TestControlPlane;
  let runner: TestRunner;
  let admin: string;
  let server: Server;
  let port: number;
  let calls: number;

  beforeAll(async () => {
    calls = 0;
    server = createServer((_req, res) => {
      calls++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    cp = await startTestControlPlane();
    admin = await cp.login();
    runner = await startTestRunner(cp, { outboundAllowedNetworks: '127.0.0.1/32' });
  });
  afterAll(async () => {
    await runner?.stop();
    await cp?.close();
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
    const execution = await finished(cp, admin, await execute(cp, flow, {}), 30_000);
    expect(execution.status).toBe('succeeded');
    expect(outputsOf(execution)).toContainEqual(['call', expect.objectContaining({ status: 200, body: { ok: true } })]);
    await stopFlow(cp, admin, flow.id);
  });

  it('and fails an input, without retrying it, for an address outside it', async () => {
    const before = calls;
    const flow = await call(`http://127.0.0.2:${port}/orders`);
    const execution = await finished(cp, admin, await execute(cp, flow, {}), 30_000);
    expect(execution.status).toBe('failed');
    expect(execution.errors).toEqual([
      expect.objectContaining({
        stepId: 'call',
        attempts: 1,
        error: expect.objectContaining({ message: expect.stringMatching(/^GET http:\/\/127\.0\.0\.2:\d+\/orders: 127\.0\.0\.2 is a private address \(loopback\); .*\(OUTBOUND_ALLOWED_NETWORKS\)$/) }),
      }),
    ]);
    expect(calls).toBe(before);
    await stopFlow(cp, admin, flow.id);
  });
});
