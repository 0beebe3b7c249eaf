import { createConnection } from 'node:net';
import { WebSocketServer, createWebSocketStream } from 'ws';

/**
 * The WebSocket-to-TCP proxy Neon runs in front of its PostgreSQL, here in front of the local
 * server: Neon's driver connects to ws://127.0.0.1:PORT/v1?address=host:port and speaks the
 * PostgreSQL protocol through it. Use `proxy.template` as NEON_WS_PROXY.
 */
export async function startNeonProxy(): Promise<{ template: string; close(): Promise<void> }> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  server.on('connection', (socket, request) => {
    const address = new URL(request.url ?? '/', 'http://proxy').searchParams.get('address') ?? '';
    const [host, port] = address.split(':');
    const tcp = createConnection({ host, port: Number(port) });
    const stream = createWebSocketStream(socket);
    stream.pipe(tcp).pipe(stream);
    const end = () => {
      tcp.destroy();
      socket.terminate();
    };
    tcp.on('error', end);
    stream.on('error', end);
  });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const { port } = server.address() as { port: number };
  return {
    template: `127.0.0.1:${port}/v1?address={host}:{port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of server.clients) client.terminate();
        server.close(() => resolve());
      }),
  };
}
