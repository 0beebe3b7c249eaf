import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { eq, sql } from 'drizzle-orm';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import type { Database } from '../db/index.js';
import { unauthorized } from '../http/errors.js';
import type { SigningKey } from './keys.js';
import { roles, tenants, tokens, userRoles, users } from './schema.js';

/** Who is calling, resolved from a verified token on every request (so revocation and role changes apply at once). */
export interface Principal {
  tokenId: string;
  tokenKind: 'session' | 'service' | 'step';
  /** Step tokens only: the one step of one flow they act for. */
  step: { flowId: string; stepId: string } | null;
  userId: string;
  username: string;
  tenantId: string | null;
  /** Null for service tokens that never expire. */
  expiresAt: Date | null;
  roles: string[];
  permissions: Set<string>;
  isAdmin: boolean;
}

const ISSUER = 'hookline';
/** Opaque tokens: `<prefix><id without dashes>_<secret>`, the prefix telling the kind. */
const OPAQUE_PREFIXES = { hlk_: 'service', hls_: 'step' } as const;
const sha256 = (value: string) => createHash('sha256').update(value).digest();
/**
 * Session JWTs whose signature was verified, by token: verifying is a pure function of the token
 * and the key, and took a tenth of an authenticated read's CPU (bench/flows-api.ts). Only the
 * signature is remembered: expiry is checked on every use, revocation and roles by the lookup.
 * Forged tokens never enter it; past the bound the oldest are forgotten.
 */
const VERIFIED_JWTS_MAX = 10_000;

/** Issues and checks the two kinds of bearer token: session JWTs and permanent service tokens. */
export class TokenService {
  /**
   * Every request runs this, so it is a prepared statement: planned once per connection, it costs
   * a fraction of an ad-hoc query (bench/flows-api.ts).
   */
  private readonly lookup;
  private readonly verified = new Map<string, { jti: string; expiresAtMs: number }>();

  constructor(
    db: Database,
    private readonly key: SigningKey,
    private readonly ttlSeconds: number,
  ) {
    this.lookup = db
      .select({
        kind: tokens.kind,
        secretHash: tokens.secretHash,
        expiresAt: tokens.expiresAt,
        revokedAt: tokens.revokedAt,
        userId: users.id,
        username: users.username,
        userStatus: users.status,
        tenantId: users.tenantId,
        tenantStatus: tenants.status,
        permissions: users.permissions,
        flowId: tokens.flowId,
        stepId: tokens.stepId,
        role: roles.name,
        rolePermissions: roles.permissions,
      })
      .from(tokens)
      .innerJoin(users, eq(users.id, tokens.userId))
      .leftJoin(tenants, eq(tenants.id, users.tenantId))
      .leftJoin(userRoles, eq(userRoles.userId, users.id))
      .leftJoin(roles, eq(roles.id, userRoles.roleId))
      .where(eq(tokens.id, sql.placeholder('tokenId')))
      .prepare('authenticate');
  }

  /** A short-lived JWT whose jti is a `tokens` row, so logout can revoke it. */
  async issueSession(tx: Database, user: { id: string; tenantId: string | null }): Promise<{ token: string; expiresAt: Date }> {
    const expiresAt = new Date(Date.now() + this.ttlSeconds * 1000);
    const [row] = await tx.insert(tokens).values({ kind: 'session', userId: user.id, expiresAt }).returning({ id: tokens.id });
    const token = await new SignJWT({ tenant: user.tenantId })
      .setProtectedHeader({ alg: this.key.algorithm, kid: this.key.kid, typ: 'JWT' })
      .setIssuer(ISSUER)
      .setSubject(user.id)
      .setJti(row!.id)
      .setIssuedAt()
      .setExpirationTime(Math.floor(expiresAt.getTime() / 1000))
      .sign(this.key.privateKey);
    return { token, expiresAt };
  }

  /** A permanent token `hlk_<id>_<secret>`; only the secret's SHA-256 is stored, so it is shown once. */
  issueServiceToken(
    tx: Database,
    input: { userId: string; description?: string; createdBy: string; expiresAt?: Date | null },
  ): Promise<{ id: string; token: string }> {
    return issueOpaque(tx, 'hlk_', {
      kind: 'service',
      userId: input.userId,
      description: input.description,
      createdBy: input.createdBy,
      expiresAt: input.expiresAt ?? null,
    });
  }

  /** A token `hls_<id>_<secret>` for one step of one flow, acting for the user who started the flow. */
  issueStepToken(
    tx: Database,
    input: { flowId: string; stepId: string; userId: string; createdBy: string },
  ): Promise<{ id: string; token: string }> {
    return issueOpaque(tx, 'hls_', { kind: 'step', ...input });
  }

  /** Verifies a bearer token and loads its principal; every failure is a 401 that says what is wrong. */
  async authenticate(bearer: string): Promise<Principal> {
    const opaque = parseOpaqueToken(bearer);
    const { tokenId, secret } = opaque ?? { tokenId: await this.verifyJwt(bearer), secret: null };
    // One row per role of the user (or one with null role fields when they have none).
    const rows = await this.lookup.execute({ tokenId });
    const row = rows[0];
    if (!row) throw unauthorized('Token is not known');
    if (opaque && secret !== null) {
      const expected = Buffer.from(row.secretHash ?? '', 'hex');
      const given = sha256(secret);
      if (row.kind !== opaque.kind || expected.length !== given.length || !timingSafeEqual(expected, given))
        throw unauthorized('Token is invalid');
    } else if (row.kind !== 'session') {
      throw unauthorized('Token is invalid');
    }
    if (row.revokedAt) throw unauthorized('Token has been revoked');
    if (row.expiresAt && row.expiresAt.getTime() <= Date.now()) throw unauthorized('Token has expired');
    if (row.userStatus !== 'active') throw unauthorized('Account is disabled');
    if (row.tenantStatus === 'disabled') throw unauthorized('Tenant is disabled');
    const roleNames = rows.flatMap((r) => (r.role === null ? [] : [r.role])).sort();
    // A step token holds no permission of its user: it may only do what its scope allows.
    const permissions = new Set(row.kind === 'step' ? [] : [...row.permissions, ...rows.flatMap((r) => r.rolePermissions ?? [])]);
    return {
      tokenId,
      tokenKind: row.kind,
      step: row.kind === 'step' && row.flowId && row.stepId ? { flowId: row.flowId, stepId: row.stepId } : null,
      userId: row.userId,
      username: row.username,
      tenantId: row.tenantId,
      expiresAt: row.expiresAt,
      roles: roleNames,
      permissions,
      isAdmin: permissions.has('all'),
    };
  }

  async revoke(tx: Database, tokenId: string): Promise<void> {
    await tx.update(tokens).set({ revokedAt: new Date() }).where(eq(tokens.id, tokenId));
  }

  private async verifyJwt(token: string): Promise<string> {
    const known = this.verified.get(token);
    if (known && known.expiresAtMs > Date.now()) return known.jti;
    this.verified.delete(token);
    try {
      const { payload } = await jwtVerify(token, this.key.verifyKey, { issuer: ISSUER, algorithms: [this.key.algorithm] });
      if (!payload.jti) throw unauthorized('Token is invalid');
      // Sessions always carry exp; one without is verified every time rather than remembered forever.
      if (payload.exp !== undefined) {
        if (this.verified.size >= VERIFIED_JWTS_MAX) this.verified.delete(this.verified.keys().next().value!);
        this.verified.set(token, { jti: payload.jti, expiresAtMs: payload.exp * 1000 });
      }
      return payload.jti;
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired) throw unauthorized('Token has expired');
      if (error instanceof joseErrors.JOSEError) throw unauthorized('Token is invalid');
      throw error;
    }
  }
}

function parseOpaqueToken(bearer: string): { tokenId: string; secret: string; kind: 'service' | 'step' } | null {
  const prefix = bearer.slice(0, 4) as keyof typeof OPAQUE_PREFIXES;
  if (!Object.hasOwn(OPAQUE_PREFIXES, prefix)) return null;
  const match = /^hl[ks]_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$/.exec(bearer);
  if (!match) throw unauthorized('Token is invalid');
  const hex = match[1]!;
  const tokenId = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  return { tokenId, secret: match[2]!, kind: OPAQUE_PREFIXES[prefix] };
}

async function issueOpaque(
  tx: Database,
  prefix: keyof typeof OPAQUE_PREFIXES,
  values: Omit<typeof tokens.$inferInsert, 'secretHash'>,
): Promise<{ id: string; token: string }> {
  const secret = randomBytes(32).toString('base64url');
  const [row] = await tx
    .insert(tokens)
    .values({ ...values, secretHash: sha256(secret).toString('hex') })
    .returning({ id: tokens.id });
  return { id: row!.id, token: `${prefix}${row!.id.replaceAll('-', '')}_${secret}` };
}
