/**
 * Question: what does a step-to-step hop cost? Messages through a two-step flow (step a's worker
 * takes each input, calls its component, publishes the output to step b's queue, reports the
 * result, acknowledges; step b takes it) against a hop written by hand with amqplib (consume from
 * queue A, publish to queue B with a confirm, acknowledge), on the same broker, with messages of
 * the same size, in the same run. Each hop runs in a process of its own.
 *
 *   npx tsx bench/step-hop.ts [--messages 5000] [--rounds 3] [--bytes 1024] [--rate 0.5] [--concurrency 1]
 *
 * Also counted, in the throughput phase: result events (`execution.step.results`) per message,
 * each one transaction in the control plane, and results per event.
 * And the CPU time per message of RabbitMQ and of each side's own processes (bench/support/cpu.ts):
 * on 2 shared cores, what one side spends is what the others lack.
 *
 * Throughput: `messages` published as fast as the broker confirms them (500 in flight); a message
 * counts when it reaches the second step. Latency: publish to arrival at the second step, with
 * messages sent at `rate` times the slower side's throughput (so neither is saturated). The steps
 * run with `nodeSettings.concurrency` = `concurrency` and the default prefetch (200 more); the
 * hand-written hop's prefetch is the same.
 * Needs RabbitMQ (TEST_AMQP_URL, default amqp://guest:guest@127.0.0.1:5672).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { connect, type ConfirmChannel } from 'amqplib';
import { pino } from 'pino';
import {
  entryExchange,
  EXECUTION_MESSAGE_DEFAULTS,
  flowTopology,
  STEP_DEFAULTS,
  STEP_HEADERS,
  type DeploymentSpec,
  type StepSpec,
} from '../protocol/fleet.js';
import type { StepResult } from '../protocol/events.js';
import { AmqpFleetBroker } from '../runner/broker/amqp.js';
import { ProcessDriver } from '../runner/drivers/process.js';
import type { RunningWorker } from '../runner/drivers/types.js';
import { specHash } from '../runner/reconcile.js';
import type { WorkerConfig } from '../runner/worker/config.js';
import { CpuMeter, processesMatching } from './support/cpu.js';

const { values: args } = parseArgs({
  options: {
    messages: { type: 'string', default: '5000' },
    rounds: { type: 'string', default: '3' },
    bytes: { type: 'string', default: '1024' },
    rate: { type: 'string', default: '0.5' },
    concurrency: { type: 'string', default: '1' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (args.help) {
  console.log('Usage: npx tsx bench/step-hop.ts [--messages N] [--rounds N] [--bytes N] [--rate FRACTION] [--concurrency N]');
  process.exit(0);
}
const [messages, rounds, bytes, rate, concurrency] = [args.messages, args.rounds, args.bytes, args.rate, args.concurrency].map(Number) as [
  number,
  number,
  number,
  number,
  number,
];
const url = process.env.TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const namespace = `bench_${Date.now().toString(36)}`;
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const percentile = (values: number[], p: number) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor((values.length * p) / 100))]!;
/** The data of every message: `bytes` of JSON, whatever the field. */
const payload = { blob: 'x'.repeat(Math.max(0, bytes - 12)) };

interface Figures {
  perSecond: number;
  p50: number;
  p99: number;
}

/**
 * Publishes `count` messages through `publish` and waits for `arrived` to have seen each.
 * `interval` (ms between messages) paces them for the latency phase; 0 sends as fast as confirms allow.
 */
async function drive(
  count: number,
  interval: number,
  publish: (i: number, sentAt: number) => Promise<void>,
  arrived: Map<number, number>,
  sent: Map<number, number>,
): Promise<{ seconds: number; latencies: number[] }> {
  arrived.clear();
  sent.clear();
  const began = performance.now();
  const inFlight = new Set<Promise<void>>();
  for (let i = 0; i < count; i++) {
    if (interval > 0) {
      const due = began + i * interval;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
    const sentAt = performance.now();
    sent.set(i, sentAt);
    const p = publish(i, Date.now()).finally(() => inFlight.delete(p));
    inFlight.add(p);
    if (inFlight.size >= 500) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  const deadline = Date.now() + 120_000;
  while (arrived.size < count) {
    if (Date.now() > deadline) throw new Error(`only ${arrived.size} of ${count} messages arrived`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const seconds = (Math.max(...arrived.values()) - began) / 1000;
  return { seconds, latencies: [...arrived].map(([i, at]) => at - sent.get(i)!) };
}

/** The hand-written hop, in a process of its own: consume A, publish to B with a confirm, acknowledge. */
const RAW_HOP = `
const { connect } = require('amqplib');
(async () => {
  const [url, from, to] = process.argv.slice(1, 4);
  const connection = await connect(url);
  const consumer = await connection.createChannel();
  const publisher = await connection.createConfirmChannel();
  await consumer.prefetch(Number(process.argv[4]));
  await consumer.consume(from, (message) => {
    publisher.publish('', to, message.content, { persistent: true, messageId: message.properties.messageId, headers: message.properties.headers }, (err) => {
      if (err) consumer.nack(message, false, true); else consumer.ack(message);
    });
  });
  process.send('ready');
})();
`;

async function main(): Promise<void> {
  const connection = await connect(url);
  const channel: ConfirmChannel = await connection.createConfirmChannel();
  const dataDir = await mkdtemp(join(tmpdir(), 'hookline-bench-'));
  const logger = pino({ level: 'warn' });
  const arrived = new Map<number, number>();
  const sent = new Map<number, number>();
  const cleanups: (() => Promise<unknown>)[] = [];
  try {
    // --- the hand-written hop
    const rawA = `${namespace}.raw.a`;
    const rawB = `${namespace}.raw.b`;
    for (const queue of [rawA, rawB]) await channel.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    cleanups.push(
      () => channel.deleteQueue(rawA),
      () => channel.deleteQueue(rawB),
    );
    const raw: ChildProcess = spawn(process.execPath, ['-e', RAW_HOP, url, rawA, rawB, String(concurrency + STEP_DEFAULTS.extraPrefetch)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    cleanups.push(async () => raw.kill());
    await once(raw, 'message');
    const rawConsumer = await connection.createChannel();
    await rawConsumer.prefetch(500);
    await rawConsumer.consume(rawB, (message) => {
      arrived.set(Number(message!.properties.headers!.i), performance.now());
      rawConsumer.ack(message!);
    });
    const publishRaw = (i: number) =>
      new Promise<void>((resolve, reject) =>
        channel.publish(
          '',
          rawA,
          Buffer.from(JSON.stringify({ id: randomUUID(), data: payload })),
          { persistent: true, messageId: randomUUID(), headers: { i } },
          (err) => (err ? reject(err) : resolve()),
        ),
      );

    // --- the same hop through two Hookline steps (their workers as the process driver runs them)
    const flowId = randomUUID();
    const step = (id: string, targets: string[], first: boolean): StepSpec => ({
      id,
      name: null,
      function: 'receive',
      component: { id: 'webhook', name: 'webhook', image: null, module: 'hookline:webhook' },
      fields: {},
      credentialsId: null,
      targets,
      first,
      maxAttempts: 1,
      timeoutSeconds: STEP_DEFAULTS.timeoutSeconds,
      concurrency,
      prefetch: concurrency + STEP_DEFAULTS.extraPrefetch,
      memoryMb: STEP_DEFAULTS.memoryMb,
      cpus: STEP_DEFAULTS.cpus,
      outputSchema: null,
    });
    const spec: DeploymentSpec = {
      flowId,
      tenant: randomUUID(),
      generation: 1,
      retry: { baseDelayMs: 1000, maxDelayMs: 1000, levels: 0 },
      maxMessages: EXECUTION_MESSAGE_DEFAULTS.maxMessages,
      passthrough: false,
      steps: [step('a', ['b'], true), step('b', [], false)],
    };
    const broker = new AmqpFleetBroker(url, namespace);
    await broker.declareFlow(spec);
    cleanups.push(async () => {
      await broker.deleteFlow(spec);
      await channel.deleteExchange(entryExchange(namespace));
      await channel.deleteExchange(`${namespace}.events`);
      await broker.close();
    });
    const driver = new ProcessDriver({ dataDir, logger, trusted: { packages: [], folders: [] } });
    const workers: RunningWorker[] = [];
    cleanups.push(() => Promise.all(workers.map((w) => w.stop())));
    await Promise.all(
      spec.steps.map(async (s) => {
        const config: WorkerConfig = {
          flowId,
          tenant: spec.tenant,
          generation: 1,
          step: s,
          retry: spec.retry,
          maxMessages: spec.maxMessages,
          passthrough: false,
          controlPlaneUrl: 'http://127.0.0.1:9',
          outboundAllowedNetworks: [],
          broker: broker.workerBroker,
        };
        let ready!: () => void;
        const isReady = new Promise<void>((resolve) => (ready = resolve));
        workers.push(
          await driver.start(
            {
              key: { flowId, stepId: s.id, generation: 1 },
              config,
              secrets: { stepToken: null, amqpUrl: url },
              specHash: specHash(config),
            },
            { ready, crashed: (info) => console.error(`worker ${s.id} crashed: ${info.output}`), log: () => {} },
          ),
        );
        await isReady;
      }),
    );
    // Arrival at step b: its results name the input's delivery, which the output of a's input i is.
    const results = `${namespace}.bench-results`;
    await channel.assertQueue(results, { durable: false, autoDelete: true });
    await channel.bindQueue(results, `${namespace}.events`, 'execution.step.results');
    const byExec = new Map<string, number>();
    const reports = { events: 0, results: 0 };
    const resultConsumer = await connection.createChannel();
    await resultConsumer.consume(results, (message) => {
      const { payload: body } = JSON.parse(message!.content.toString()) as { payload: { results: StepResult[] } };
      reports.events++;
      reports.results += body.results.length;
      for (const result of body.results) {
        if (result.stepId !== 'b') continue;
        const i = byExec.get(result.flowExecId);
        // b's startedAt is when it took the input: its arrival, on b's clock (the same machine).
        if (i !== undefined) arrived.set(i, performance.now() - (Date.now() - Date.parse(result.startedAt)));
      }
      resultConsumer.ack(message!);
    });
    const names = flowTopology(namespace, flowId);
    const publishHookline = (i: number) => {
      const flowExecId = randomUUID();
      byExec.set(flowExecId, i);
      const message = { id: randomUUID(), data: payload, attachments: {}, headers: {}, metadata: {}, passthrough: {} };
      return new Promise<void>((resolve, reject) =>
        channel.publish(
          names.exchange,
          names.stepKey('a'),
          Buffer.from(JSON.stringify(message)),
          {
            persistent: true,
            messageId: randomUUID(),
            headers: { [STEP_HEADERS.flowExecId]: flowExecId, [STEP_HEADERS.tenant]: spec.tenant },
          },
          (err) => (err ? reject(err) : resolve()),
        ),
      );
    };

    console.log(
      `step-to-step hop, ${messages} messages of ${bytes} bytes, concurrency ${concurrency}, ${rounds} rounds (RabbitMQ ${url.replace(/\/\/[^@]*@/, '//')})`,
    );
    const figures = { raw: [] as Figures[], hookline: [] as Figures[] };
    const perMessage = { events: [] as number[], results: [] as number[] };
    const brokerCpu = new CpuMeter(() => processesMatching('beam.smp'));
    const rawHop = new CpuMeter(async () => [raw.pid!]);
    const steps = new CpuMeter(() => processesMatching('step-worker-', process.pid));
    const cpu = { raw: { broker: [] as number[], hop: [] as number[] }, hookline: { broker: [] as number[], hop: [] as number[] } };
    const metered = async (side: 'raw' | 'hookline', hop: CpuMeter, run: () => ReturnType<typeof drive>) => {
      await Promise.all([brokerCpu.start(), hop.start()]);
      const result = await run();
      const [brokerMs, hopMs] = await Promise.all([brokerCpu.stop(), hop.stop()]);
      cpu[side].broker.push(brokerMs / messages);
      cpu[side].hop.push(hopMs / messages);
      return result;
    };
    for (let round = 1; round <= rounds; round++) {
      const rawRun = await metered('raw', rawHop, () => drive(messages, 0, publishRaw, arrived, sent));
      reports.events = 0;
      reports.results = 0;
      const hookRun = await metered('hookline', steps, () => drive(messages, 0, publishHookline, arrived, sent));
      // b's result arrives with its event: every result of the phase is counted by now.
      perMessage.events.push(reports.events / messages);
      perMessage.results.push(reports.results / reports.events);
      const rawPerSecond = messages / rawRun.seconds;
      const interval = 1000 / (Math.min(rawPerSecond, messages / hookRun.seconds) * rate);
      const paced = Math.min(messages, 2000);
      const rawLatency = (await drive(paced, interval, publishRaw, arrived, sent)).latencies;
      const hookLatency = (await drive(paced, interval, publishHookline, arrived, sent)).latencies;
      figures.raw.push({ perSecond: rawPerSecond, p50: percentile(rawLatency, 50), p99: percentile(rawLatency, 99) });
      figures.hookline.push({ perSecond: messages / hookRun.seconds, p50: percentile(hookLatency, 50), p99: percentile(hookLatency, 99) });
      console.log(`  round ${round}: raw ${Math.round(rawPerSecond)} msg/s, hookline ${Math.round(messages / hookRun.seconds)} msg/s`);
    }
    const summary = (all: Figures[]) => ({
      perSecond: median(all.map((f) => f.perSecond)),
      p50: median(all.map((f) => f.p50)),
      p99: median(all.map((f) => f.p99)),
    });
    const raw2 = summary(figures.raw);
    const hook = summary(figures.hookline);
    const line = (name: string, f: Figures) =>
      `| ${name} | ${Math.round(f.perSecond)} msg/s | ${f.p50.toFixed(1)} ms | ${f.p99.toFixed(1)} ms |`;
    console.log(`\n| hop | throughput | p50 latency | p99 latency (at ${rate} of the slower side's throughput) |\n|---|---|---|---|`);
    console.log(line('raw amqplib (consume, publish with confirm, ack)', raw2));
    console.log(line('Hookline step → step', hook));
    const us = (values: number[]) => `${Math.round(median(values) * 1000)} µs`;
    console.log(
      `\nCPU per message (throughput phase): broker ${us(cpu.raw.broker)} raw vs ${us(cpu.hookline.broker)} Hookline; the hop's own processes ${us(cpu.raw.hop)} raw vs ${us(cpu.hookline.hop)} Hookline (steps a and b)`,
    );
    console.log(
      `\nresult events per message (each a control-plane transaction): ${median(perMessage.events).toFixed(3)}, results per event: ${median(perMessage.results).toFixed(1)}`,
    );
    console.log(`\nratio (Hookline / raw amqplib): throughput ${(hook.perSecond / raw2.perSecond).toFixed(2)} (aim: 0.7 or more)`);
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
    await connection.close().catch(() => {});
    await rm(dataDir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
