/**
 * `npm run edge`: the edge Worker self-hosted, in production, without wrangler: workerd serves the
 * same bundle as `wrangler deploy` would, Durable Objects on local disk, and this process runs the
 * reconcile the Cron Trigger runs on Cloudflare, every minute. In front of a control plane of your own.
 */
import { mkdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { signPeerToken } from '../protocol/peer-token.js';
import { startLocalEdge } from './local-edge.js';

const HELP = `Hookline's edge Worker on workerd (self-hosted; no wrangler)

Usage: npm run edge [-- --help]
  EDGE_CONTROL_SECRET     shared with the control plane (its EDGE_CONTROL_SECRET; required)
  CONTROL_PLANE_URL       where executions are delivered (required), such as http://10.0.0.5:3000
  EDGE_HOST, EDGE_PORT    where webhooks are served (default 127.0.0.1:8787; 0.0.0.0 for every address)
  EDGE_DATA_DIR           Durable Object storage and the generated workerd configuration (default .hookline/edge)
  HOOK_BODY_LIMIT_BYTES   the largest webhook body (default and most: 1 MiB)
Set the control plane's EDGE_URL to this edge's URL. The reconcile runs every minute from here.`;

const { values } = parseArgs({ options: { help: { type: 'boolean', short: 'h' } } });
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const { EDGE_CONTROL_SECRET: secret, CONTROL_PLANE_URL: controlPlane } = process.env;
if (!secret || secret.length < 32 || !controlPlane) {
  console.error(`EDGE_CONTROL_SECRET (at least 32 characters) and CONTROL_PLANE_URL are required.\n\n${HELP}`);
  process.exit(2);
}
const dataDir = process.env.EDGE_DATA_DIR ?? '.hookline/edge';
mkdirSync(dataDir, { recursive: true });
const vars: Record<string, string> = { EDGE_CONTROL_SECRET: secret, CONTROL_PLANE_URL: controlPlane };
if (process.env.HOOK_BODY_LIMIT_BYTES) vars.HOOK_BODY_LIMIT_BYTES = process.env.HOOK_BODY_LIMIT_BYTES;
const edge = await startLocalEdge('workerd', {
  port: Number(process.env.EDGE_PORT ?? 8787),
  host: process.env.EDGE_HOST ?? '127.0.0.1',
  vars,
  dataDir,
  logFile: `${dataDir}/workerd.log`,
});
const reconcile = async () => {
  const response = await fetch(`${edge.url}/control/reconcile`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await signPeerToken(secret, 'control-plane')}` },
  }).catch((error: Error) => ({ status: 0, text: async () => error.message }));
  if (response.status !== 200) console.warn(`reconcile skipped (${response.status}): ${(await response.text()).slice(0, 300)}`);
};
const timer = setInterval(reconcile, 60_000);
edge.child.once('exit', (code) => {
  console.error(`workerd exited (${code}); see ${dataDir}/workerd.log`);
  process.exit(1);
});
// Handled before the edge says it is up: a SIGTERM sent as soon as it has said so (or has reconciled) stops it cleanly.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, async () => {
    clearInterval(timer);
    edge.child.removeAllListeners('exit');
    await edge.stop();
    process.exit(0);
  });
}
console.log(`Hookline edge on workerd: ${edge.url} (log in ${dataDir}/workerd.log), delivering to ${controlPlane}`);
await reconcile();
