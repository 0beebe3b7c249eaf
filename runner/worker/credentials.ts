import type { WorkerConfig } from './config.js';

/** A credential read is kept this long, so a busy step does not ask the control plane for every input. */
const CACHE_MS = 30_000;

/**
 * Reads the step's credential with its step token (GET /api/v1/secrets/{id}: the one call a step
 * token may make). OAuth2 tokens near their expiry are refreshed by the control plane on read.
 */
export function credentialReader(config: WorkerConfig, stepToken: string | null): () => Promise<Record<string, unknown> | null> {
  const secretId = config.step.credentialsId;
  let cached: { value: Record<string, unknown>; until: number } | undefined;
  return async () => {
    if (!secretId) return null;
    if (cached && cached.until > Date.now()) return cached.value;
    if (!stepToken) throw new Error('the step has no token to read its credential with');
    const response = await fetch(new URL(`/api/v1/secrets/${encodeURIComponent(secretId)}`, config.controlPlaneUrl), {
      headers: { authorization: `Bearer ${stepToken}` },
      signal: AbortSignal.timeout(10_000),
    });
    const body = (await response.json().catch(() => null)) as {
      data?: { value?: Record<string, unknown> };
      errors?: { message: string }[];
    } | null;
    if (!response.ok || !body?.data?.value) {
      throw new Error(
        `cannot read the step's credential ${secretId}: ${response.status} ${body?.errors?.map((e) => e.message).join('; ') ?? ''}`.trim(),
      );
    }
    cached = { value: body.data.value, until: Date.now() + CACHE_MS };
    return cached.value;
  };
}
