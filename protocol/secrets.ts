import { z } from 'zod';

/** The credential types and the shape of each one's value, as step workers receive it. */
export const secretValueSchemas = {
  SIMPLE: z.strictObject({ username: z.string().min(1).max(1000), passphrase: z.string().min(1).max(10_000) }),
  API_KEY: z.strictObject({ key: z.string().min(1).max(10_000), headerName: z.string().min(1).max(200).default('x-api-key') }),
  MIXED: z.strictObject({ payload: z.record(z.string(), z.unknown()) }),
  OAUTH2: z.strictObject({
    accessToken: z.string().min(1),
    refreshToken: z.string().min(1).optional(),
    tokenType: z.string().default('Bearer'),
    scope: z.string().optional(),
    /** ISO 8601; left out when the provider gave no lifetime. */
    expiresAt: z.iso.datetime({ offset: true }).optional(),
  }),
} as const;

export const SECRET_TYPES = ['SIMPLE', 'API_KEY', 'MIXED', 'OAUTH2'] as const;
export type SecretType = (typeof SECRET_TYPES)[number];
export type SecretValue<T extends SecretType = SecretType> = z.infer<(typeof secretValueSchemas)[T]>;

/** What a reader without secrets.secret.readRaw sees instead of a value. */
export const MASK = '********';

const SENSITIVE: Record<SecretType, string[]> = {
  SIMPLE: ['passphrase'],
  API_KEY: ['key'],
  MIXED: [],
  OAUTH2: ['accessToken', 'refreshToken'],
};

/** The value with every sensitive field masked (every field of a MIXED payload). */
export function maskSecretValue(type: SecretType, value: Record<string, unknown>): Record<string, unknown> {
  if (type === 'MIXED')
    return { payload: Object.fromEntries(Object.keys((value.payload as Record<string, unknown>) ?? {}).map((key) => [key, MASK])) };
  return Object.fromEntries(Object.entries(value).map(([key, field]) => [key, SENSITIVE[type].includes(key) ? MASK : field]));
}
