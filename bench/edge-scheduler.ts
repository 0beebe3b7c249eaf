/**
 * Question: do schedules fire on time, once, and without gaps when many are armed at once?
 * N flows with per-second (or per-minute) cron schedules on their Durable Objects' alarms in local
 * workerd (Miniflare); every execution is delivered to a stand-in control plane that records it.
 * Figures: dispatch lag (when the alarm ran the slot minus the slot's time) p50/p99, duplicate
 * slots (a flowExecId delivered twice) and missed slots (gaps between a flow's first and last).
 *
 *   npx tsx bench/edge-scheduler.ts [--flows 1000] [--seconds 20] [--cron "* * * * * *"]
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { startTestEdge } from '../test/support/edge.js';
import { durableStorage } from './support/storage.js';

const { values: args } = parseArgs({
  options: {
    flows: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '20' },
    cron: { type: 'string', default: '* * * * * *' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (args.help) {
  console.log('Usage: npx tsx bench/edge-scheduler.ts [--flows N] [--seconds N] [--cron EXPR]');
  process.exit(0);
}
const flowCount = Number(args.flows);
const seconds = Number(args.seconds);

interface Fired {
  flowId: string;
  flowExecId: string;
  slot: number;
  lag: number;
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? NaN;

/**
 * Pushes a trigger, again when the connection was reset: local workerd, busy with the alarms of the
 * flows armed before, at times drops a kept-alive connection (ECONNRESET); a push is idempotent.
 */
async function arm(push: () => Promise<void>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await push();
    } catch (error) {
      if (attempt >= 5 || (error as { cause?: { code?: string } }).cause?.code !== 'ECONNRESET') throw error;
    }
  }
}

async function main() {
  const fired: Fired[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const executions = (
        JSON.parse(body) as {
          executions: { flowId: string; flowExecId: string; message: { data: { scheduledAt: string; firedAt: string } } }[];
        }
      ).executions;
      for (const e of executions) {
        const slot = Date.parse(e.message.data.scheduledAt);
        fired.push({ flowId: e.flowId, flowExecId: e.flowExecId, slot, lag: Date.parse(e.message.data.firedAt) - slot });
      }
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ data: { accepted: executions.map((e) => e.flowExecId), duplicates: [], rejected: [] } }));
    });
  }).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const edge = await startTestEdge({ CONTROL_PLANE_URL: `http://127.0.0.1:${(server.address() as { port: number }).port}` });

  process.stdout.write(`arming ${flowCount} flows with "${args.cron}" `);
  const flows = Array.from({ length: flowCount }, () => randomUUID());
  for (let i = 0; i < flows.length; i += 50) {
    await Promise.all(flows.slice(i, i + 50).map((flowId) => arm(() => edge.push({ flowId, cron: args.cron }))));
    process.stdout.write('.');
  }
  const armedAt = Date.now();
  console.log(` armed; measuring for ${seconds} s`);
  console.log(await durableStorage());
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  await Promise.all(flows.map((flowId) => edge.control('DELETE', `/control/flows/${flowId}?version=${Date.now()}`)));
  await new Promise((resolve) => setTimeout(resolve, 3000)); // the last deliveries

  const counted = new Map<string, number>();
  for (const f of fired) counted.set(f.flowExecId, (counted.get(f.flowExecId) ?? 0) + 1);
  const duplicates = [...counted.values()].filter((n) => n > 1).reduce((sum, n) => sum + n - 1, 0);
  let missed = 0;
  const step = args.cron.trim().split(/\s+/).length === 6 ? 1000 : 60_000;
  for (const flowId of flows) {
    const slots = [...new Set(fired.filter((f) => f.flowId === flowId).map((f) => f.slot))].sort((a, b) => a - b);
    for (let i = 1; i < slots.length; i++) missed += Math.round((slots[i]! - slots[i - 1]!) / step) - 1;
  }
  const lags = fired.map((f) => f.lag).sort((a, b) => a - b);
  const silent = flows.filter((flowId) => !fired.some((f) => f.flowId === flowId)).length;
  console.log(`\n${flowCount} flows, "${args.cron}", ${seconds} s after arming at ${new Date(armedAt).toISOString()}`);
  const inWindow = fired.filter((f) => f.slot >= armedAt && f.slot < armedAt + seconds * 1000).length;
  console.log(
    `  slots run          ${(inWindow / seconds).toFixed(0)}/s once all were armed (ideal ${(flowCount * 1000) / step}/s); ${fired.length} in all`,
  );
  console.log(
    `  dispatch lag       p50 ${quantile(lags, 0.5).toFixed(0)} ms   p99 ${quantile(lags, 0.99).toFixed(0)} ms   max ${lags.at(-1)?.toFixed(0)} ms   (baseline: 0 ms, the slot's own time)`,
  );
  console.log(`  duplicate slots    ${duplicates}`);
  console.log(`  missed slots       ${missed}   (flows that never fired: ${silent})`);
  await edge.close();
  server.close();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
