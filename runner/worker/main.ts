/**
 * A step worker: the process (or the container's process) that runs one step of one flow, started
 * with its secrets on stdin and its step in HOOKLINE_WORKER or on stdin too (config.ts). A warm
 * one (the process driver's pool) loads first and then waits for its step.
 * It logs JSON lines; the one with READY_MARK tells the driver it consumes its queue.
 */
import { pino } from 'pino';
import { loadStepFunction } from './component.js';
import { WORKER_ENV, workerConfigSchema } from './config.js';
import { credentialReader } from './credentials.js';
import { readStdin, RunnerGone } from './secrets.js';
import { StepWorker } from './step.js';
import type { WorkerTransport } from './transport.js';

/** How long a stopping worker may finish the inputs it works on. */
const DRAIN_MS = 8_000;

const logger = pino({ base: { service: 'step-worker' }, redact: ['token', '*.token', 'stepToken'] });

async function main(): Promise<void> {
  const warm = process.env[WORKER_ENV.warm] === '1';
  if (warm) logger.info({ hookline: 'warm' }, 'step worker loaded; waiting for its step');
  const { step, ...secrets } = await readStdin({ warm });
  const raw = process.env[WORKER_ENV.config];
  if (!step && !raw) throw new Error(`${WORKER_ENV.config} is not set: a step worker is started by a runner, not by hand`);
  const config = step?.config ?? workerConfigSchema.parse(JSON.parse(raw!));
  const log = logger.child({ flowId: config.flowId, stepId: config.step.id, generation: config.generation });
  const module = step?.componentModule ?? process.env[WORKER_ENV.componentModule] ?? config.step.component.module;
  if (!module) throw new Error(`component ${config.step.component.name} has no module to load`);
  const fn = await loadStepFunction(module, config.step.function);
  // ajv, and amqplib below, are loaded only by the workers that use them: every worker starts sooner.
  const checkOutput = config.step.outputSchema ? (await import('./output-schema.js')).compileOutputSchema(config.step.outputSchema) : null;

  let transport: WorkerTransport;
  if (config.broker.kind === 'amqp') {
    if (!secrets.amqpUrl) throw new Error('the runner gave no broker URL: a worker on RabbitMQ needs one');
    const { AmqpTransport } = await import('./amqp-transport.js');
    transport = await AmqpTransport.connect(secrets.amqpUrl, config.broker.namespace, config.flowId, config.step.id, (error, failures) => {
      if (failures === 1) log.warn({ err: error }, 'cannot reach the broker; waiting for it');
    });
  } else {
    transport = new (await import('./ipc-transport.js')).IpcTransport();
  }
  transport.onLost((error) => {
    log.error({ err: error }, 'lost the broker; exiting so that the runner starts the worker again');
    process.exit(1);
  });

  const worker = new StepWorker({
    config,
    transport,
    fn,
    logger: log,
    credentials: credentialReader(config, secrets.stepToken),
    checkOutput,
  });
  await worker.start();
  log.info({ hookline: 'ready', component: config.step.component.name, function: config.step.function }, 'step worker ready');

  let stopping = false;
  const stop = async (why: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ why }, 'stopping: finishing the inputs at hand');
    await worker.drain(DRAIN_MS);
    await transport.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
  // A process worker whose runner died has nobody to supervise it: it goes too, leaving no orphan.
  if (process.send && config.broker.kind === 'amqp') process.once('disconnect', () => void stop('the runner is gone'));
  // A component's stray error (a rejected promise nobody awaited) must not take the step down.
  process.on('unhandledRejection', (reason) => log.error({ err: reason }, 'a promise the component did not await was rejected'));
  process.on('uncaughtException', (error) => log.error({ err: error }, 'the component threw outside of a step call'));
}

main().catch((error: Error) => {
  // Its output went with the runner: there is nobody to tell, and writing would fail.
  if (error instanceof RunnerGone) process.exit(0);
  // At error, not fatal: pino flushes a fatal line synchronously, and its flush retries forever
  // when stdout's reader is gone (sonic-boom 4), which would leave the worker behind.
  logger.error({ err: error }, `the step worker cannot start: ${error.message}`);
  // Let the line reach the driver, which reports it as the reason.
  setTimeout(() => process.exit(1), 50);
});
