import { desiredStateSchema, type DeploymentReport, type DesiredState, type StepLogLine } from '../protocol/fleet.js';
import type { RunnerRegistration } from '../protocol/runner.js';

/** The control plane answered with an error (4xx, 5xx): its message, and the status. */
export class ControlPlaneError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Every call a runner makes to the control plane, with its service-account token. */
export class ControlPlaneClient {
  constructor(
    private readonly baseUrl: string,
    private readonly token: string,
  ) {}

  private async call<T>(method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs = 10_000, signal?: AbortSignal): Promise<T> {
    const timeout = AbortSignal.timeout(timeoutMs);
    const response = await fetch(new URL(path, this.baseUrl), {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: signal ? AbortSignal.any([timeout, signal]) : timeout,
    });
    const answer = (await response.json().catch(() => null)) as { data?: T; errors?: { message: string }[] } | null;
    if (!response.ok)
      throw new ControlPlaneError(
        response.status,
        `${method} ${path}: ${response.status} ${answer?.errors?.map((e) => e.message).join('; ') ?? ''}`.trim(),
      );
    return answer?.data as T;
  }

  register(registration: RunnerRegistration): Promise<{ id: string; heartbeatSeconds: number }> {
    return this.call('POST', '/runners', registration);
  }

  heartbeat(runnerId: string, deployments: DeploymentReport[]): Promise<{ heartbeatSeconds: number }> {
    return this.call('POST', `/runners/${runnerId}/heartbeat`, { deployments });
  }

  /** The desired state, once it is newer than `after` (or after `waitSeconds` as it is). */
  async desired(runnerId: string, after: number, waitSeconds: number, signal?: AbortSignal): Promise<DesiredState> {
    const data = await this.call(
      'GET',
      `/runners/${runnerId}/deployments?after=${after}&wait=${waitSeconds}`,
      undefined,
      (waitSeconds + 10) * 1000,
      signal,
    );
    return desiredStateSchema.parse(data);
  }

  async stepToken(flowId: string, stepId: string): Promise<string> {
    return (await this.call<{ token: string }>('POST', `/flows/${flowId}/steps/${stepId}/token`)).token;
  }

  async shipLogs(runnerId: string, lines: StepLogLine[]): Promise<void> {
    await this.call('POST', `/runners/${runnerId}/logs`, { lines });
  }
}
