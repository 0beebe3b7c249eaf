import type { ChildProcess } from 'node:child_process';
import type { DeploymentSpec } from '../../protocol/fleet.js';
import type { WorkerConfig } from '../worker/config.js';

/** The runner's side of the data plane: it lays out each flow's exchanges and queues; workers do the rest. */
export interface FleetBroker {
  readonly kind: 'amqp' | 'memory';
  /** How a worker reaches this broker. */
  readonly workerBroker: WorkerConfig['broker'];
  /** The URL an amqp worker connects with, handed to it as a secret; null for the in-process broker. */
  readonly workerUrl: string | null;
  /** Declares the flow's exchanges, queues and bindings. Idempotent: what exists stays, messages included. */
  declareFlow(spec: DeploymentSpec): Promise<void>;
  /** Deletes them, with whatever messages are still in them. */
  deleteFlow(spec: DeploymentSpec): Promise<void>;
  /** In-process broker only: connects a process worker just spawned to its step's queue. */
  attach?(child: ChildProcess, flowId: string, stepId: string): void;
  close(): Promise<void>;
}
