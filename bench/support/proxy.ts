import { once } from 'node:events';
import { createServer, request } from 'node:http';

export interface FailingProxy {
  url: string;
  /** While true, every request is answered 500 without reaching the target. */
  failing: boolean;
  close(): Promise<void>;
}

/** An HTTP proxy on a free port in front of `target` (http://host:port), that can be told to answer 500 to everything. */
export async function startFailingProxy(target: string): Promise<FailingProxy> {
  const { hostname, port } = new URL(target);
  const proxy: FailingProxy = { url: '', failing: false, close: async () => {} };
  const server = createServer((incoming, outgoing) => {
    if (proxy.failing) {
      incoming.resume();
      outgoing.writeHead(500, { 'content-type': 'application/json' }).end('{"error":{"message":"failing on purpose (bench)"}}');
      return;
    }
    const forwarded = request({ hostname, port, path: incoming.url, method: incoming.method, headers: incoming.headers }, (answer) => {
      outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(outgoing);
    });
    forwarded.on('error', () => {
      if (!outgoing.headersSent) outgoing.writeHead(502).end();
      else outgoing.destroy();
    });
    incoming.on('aborted', () => forwarded.destroy());
    incoming.pipe(forwarded);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address() as { port: number };
  proxy.url = `http://127.0.0.1:${address.port}`;
  proxy.close = async () => {
    server.closeAllConnections();
    await new Promise((done) => server.close(done));
  };
  return proxy;
}
