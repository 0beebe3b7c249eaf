/**
 * `npm run bench:faults`: each deployable as a process of its own under load, one fault per round;
 * what became of every accepted call, and how long work took to resume. See bench/README.md.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { call } from './support/callers.js';
import { caughtUpMs, drained, executionsOf, outcome, recoveryMs, type Outcome } from './support/outcome.js';
import { startInfrastructure, startStack, type Infrastructure, type Stack } from './support/stack.js';

interface Fault {
  driver: 'process' | 'docker';
  /** What it does; resolves once the failed part is back (or, with nothing to bring back, at once), with a note when it has one. */
  inject(stack: Stack, infra: Infrastructure, outageSeconds: number): Promise<unknown>;
}

const FAULTS: Record<string, Fault> = {
  'control-plane-kill': {
    driver: 'process',
    async inject(stack) {
      await stack.controlPlane.kill();
      await stack.controlPlane.start();
    },
  },
  'rabbitmq-restart': {
    driver: 'process',
    async inject(_, infra) {
      await infra.broker.stop();
      await infra.broker.start();
    },
  },
  'runner-kill': {
    driver: 'process',
    async inject(stack) {
      const hosting = await stack.runnersOfFlow();
      await (hosting[0] ?? stack.runners[0]!).kill();
      return `killed ${(hosting[0] ?? stack.runners[0]!).name}; the flow was on ${hosting.length} of 2 runners`;
    },
  },
  'postgres-restart': { driver: 'process', inject: (_, infra) => infra.postgres.restart() },
  'edge-kill': {
    driver: 'process',
    async inject(stack) {
      await stack.edge.kill();
      await stack.edge.start();
    },
  },
  'dockerd-restart': { driver: 'docker', inject: (_, infra) => infra.dockerd!.restart() },
  'control-plane-500': {
    driver: 'process',
    async inject(stack, _, outageSeconds) {
      stack.proxy.failing = true;
      await sleep(outageSeconds * 1000);
      stack.proxy.failing = false;
    },
  },
};

const { values: args } = parseArgs({
  options: {
    help: { type: 'boolean', short: 'h' },
    faults: { type: 'string', default: Object.keys(FAULTS).join(',') },
    seconds: { type: 'string', default: '60' },
    callers: { type: 'string', default: '20' },
    'fault-at': { type: 'string', default: '20' },
    outage: { type: 'string', default: '60' },
    drain: { type: 'string', default: '300' },
  },
});
if (args.help) {
  console.log(`bench/faults.ts: faults under load, one per round

Usage: npm run bench:faults -- [--faults ${Object.keys(FAULTS).join(',')}]
                               [--seconds 60] [--callers 20] [--fault-at 20] [--outage 60] [--drain 300]

Each round starts Hookline as separate processes: the control plane on a private PostgreSQL
cluster and a private RabbitMQ node, behind a proxy; two runner nodes (process driver; docker
driver on a private dockerd for dockerd-restart); the edge on workerd. --callers send webhooks to
a webhook → jsonata flow for --seconds, each its next call once its last was answered; the fault
comes --fault-at seconds in (control-plane-500: the proxy answers 500 for --outage seconds). Then
it waits up to --drain seconds for every accepted call's execution to finish and prints, per
fault: calls accepted and refused; accepted calls with no finished execution (missing);
executions a step took twice (duplicated); failed executions; executions of calls whose answer was
lost (unanswered); recovery: from the part being back to the first execution received since the
fault finishing; caught up: from the part being back until every execution received by then
finished; the slowest accepted call → execution finished.`);
  process.exit(0);
}

const chosen = args.faults!.split(',').map((name) => name.trim());
for (const name of chosen) if (!FAULTS[name]) throw new Error(`--faults: ${name} is not one of ${Object.keys(FAULTS).join(', ')}`);
const seconds = Number(args.seconds);
const callers = Number(args.callers);
const faultAt = Number(args['fault-at']);
const outageSeconds = Number(args.outage);
const drainSeconds = Number(args.drain);

interface Round extends Outcome {
  fault: string;
  recoveryMs: number | undefined;
  caughtUpMs: number | undefined;
  drainMs: number;
  notes: string[];
}

async function round(name: string, infra: Infrastructure): Promise<Round> {
  const fault = FAULTS[name]!;
  console.log(`\n${name}: starting the parts`);
  const stack = await startStack(infra, { driver: fault.driver });
  const notes: string[] = [];
  try {
    console.log(`  ${callers} callers for ${seconds} s, the fault ${faultAt} s in`);
    const load = call(stack.hookUrl, { callers, seconds });
    await sleep(faultAt * 1000);
    const faultStart = Date.now();
    const note = await fault.inject(stack, infra, outageSeconds);
    if (typeof note === 'string') notes.push(note);
    const backAt = Date.now();
    console.log(`  fault done; the part back after ${((backAt - faultStart) / 1000).toFixed(1)} s`);
    const calls = await load;
    // A part that died of the fault is started again, as its supervisor would, and noted.
    for (const part of [stack.controlPlane, stack.edge]) {
      if (part.pid() === undefined) {
        notes.push(`${part.name} died; restarted by the bench`);
        await part.start();
      }
    }
    for (const exit of stack.unexpectedExits) console.log(`  unexpected exit: ${exit}`);
    const drain = await drained(stack.db, calls, drainSeconds * 1000);
    if (!drain.complete) notes.push(`not drained within ${drainSeconds} s`);
    const rows = await executionsOf(stack.db, stack.flowId);
    const result: Round = {
      fault: name,
      ...outcome(calls, rows),
      recoveryMs: recoveryMs(rows, faultStart, backAt),
      caughtUpMs: caughtUpMs(rows, backAt),
      drainMs: drain.ms,
      notes: [...notes, ...stack.unexpectedExits.map((exit) => exit.split(';')[0]!)],
    };
    console.log(
      `  accepted ${result.accepted} (refused ${result.refused}), missing ${result.missing}, duplicated ${result.duplicated}, failed ${result.failed}, ` +
        `unanswered ${result.unanswered}; recovery ${seconds_(result.recoveryMs)}, caught up ${seconds_(result.caughtUpMs)}, slowest ${seconds_(result.slowestMs)}, drained ${seconds_(result.drainMs)} after the load`,
    );
    return result;
  } finally {
    await stack.stop();
  }
}

const seconds_ = (ms: number | undefined) => (ms === undefined ? '–' : `${(ms / 1000).toFixed(1)} s`);

const infra = await startInfrastructure({ docker: chosen.some((name) => FAULTS[name]!.driver === 'docker') });
const results: Round[] = [];
try {
  for (const name of chosen) results.push(await round(name, infra));
} finally {
  await infra.stop();
}

console.log(`\n${callers} callers for ${seconds} s, the fault ${faultAt} s in\n`);
console.log(
  '| fault | accepted | refused | missing | duplicated | failed | unanswered | recovery | caught up | slowest call → done | notes |',
);
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|');
for (const r of results)
  console.log(
    `| ${r.fault} | ${r.accepted} | ${r.refused} | ${r.missing} | ${r.duplicated} | ${r.failed} | ${r.unanswered} | ` +
      `${seconds_(r.recoveryMs)} | ${seconds_(r.caughtUpMs)} | ${seconds_(r.slowestMs)} | ${r.notes.join('; ')} |`,
  );
