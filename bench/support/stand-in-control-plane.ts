import { once } from 'node:events';
import { createServer } from 'node:http';

/**
 * The control plane as the edge sees it, for the edge benches: acknowledges every delivered batch as
 * accepted (anything else the edge calls gets an empty 200). Its own cost is bench/flows-api.ts's question.
 */
export async function acknowledgingControlPlane(): Promise<{ url: string; delivered: () => number; close: () => void }> {
  let delivered = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      const ids = body.startsWith('{"executions"')
        ? (JSON.parse(body) as { executions: { flowExecId: string }[] }).executions.map((e) => e.flowExecId)
        : [];
      delivered += ids.length;
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ data: { accepted: ids, duplicates: [], rejected: [] } }));
    });
  }).listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    delivered: () => delivered,
    close: () => server.close(),
  };
}
