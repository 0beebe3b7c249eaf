import { createPublicKey, randomBytes, webcrypto } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { exportJWK, generateKeyPair, importJWK, importPKCS8, type JWK, type CryptoKey } from 'jose';
import type { Config } from '../config.js';
import type { Database } from '../db/index.js';
import { signingKeys } from './schema.js';

type Algorithm = Config['JWT_ALGORITHM'];

export interface SigningKey {
  kid: string;
  algorithm: Algorithm;
  privateKey: CryptoKey;
  /** The key that verifies: the public key for RS256/EdDSA, the shared secret for HS256. */
  verifyKey: CryptoKey;
  /** Published at /.well-known/jwks.json; null for HS256, whose key is secret. */
  publicJwk: JWK | null;
}

const PRIVATE_PARTS = ['d', 'p', 'q', 'dp', 'dq', 'qi'] as const;
const publicPart = (jwk: JWK): JWK =>
  Object.fromEntries(Object.entries(jwk).filter(([k]) => !(PRIVATE_PARTS as readonly string[]).includes(k))) as JWK;

/**
 * The JWT signing key: from JWT_SECRET or JWT_PRIVATE_KEY when configured, else generated once and
 * stored in the database (insert-if-absent, then read back), so every replica signs with the same key.
 */
export async function loadSigningKey(db: Database, config: Config): Promise<SigningKey> {
  const algorithm = config.JWT_ALGORITHM;
  if (algorithm === 'HS256' && config.JWT_SECRET) {
    const secret = await hmacKey(Buffer.from(config.JWT_SECRET, 'utf8'));
    return { kid: 'configured-hs256', algorithm, privateKey: secret, verifyKey: secret, publicJwk: null };
  }
  if (algorithm !== 'HS256' && config.JWT_PRIVATE_KEY) {
    const privateKey = await importPKCS8(config.JWT_PRIVATE_KEY, algorithm);
    const pem = createPublicKey(config.JWT_PRIVATE_KEY).export({ format: 'jwk' }) as JWK;
    const publicJwk = { ...pem, alg: algorithm, use: 'sig', kid: `configured-${algorithm.toLowerCase()}` };
    return { kid: publicJwk.kid, algorithm, privateKey, verifyKey: (await importJWK(publicJwk, algorithm)) as CryptoKey, publicJwk };
  }

  const id = `generated-${algorithm.toLowerCase()}`;
  const [existing] = await db.select().from(signingKeys).where(eq(signingKeys.id, id));
  if (!existing) {
    const created = await generate(algorithm, id);
    await db
      .insert(signingKeys)
      .values({ id, algorithm, ...created })
      .onConflictDoNothing();
  }
  const [row] = await db.select().from(signingKeys).where(eq(signingKeys.id, id));
  const privateJwk = row!.privateJwk as JWK;
  const publicJwk = (row!.publicJwk as JWK | null) ?? null;
  if (algorithm === 'HS256') {
    const secret = await hmacKey(Buffer.from(privateJwk.k!, 'base64url'));
    return { kid: id, algorithm, privateKey: secret, verifyKey: secret, publicJwk: null };
  }
  return {
    kid: id,
    algorithm,
    privateKey: (await importJWK(privateJwk, algorithm)) as CryptoKey,
    verifyKey: (await importJWK(publicJwk!, algorithm)) as CryptoKey,
    publicJwk,
  };
}

async function generate(algorithm: Algorithm, kid: string): Promise<{ privateJwk: JWK; publicJwk: JWK | null }> {
  if (algorithm === 'HS256') return { privateJwk: { kty: 'oct', k: randomBytes(32).toString('base64url') }, publicJwk: null };
  const { privateKey } = await generateKeyPair(algorithm, { extractable: true });
  const privateJwk = await exportJWK(privateKey);
  return { privateJwk, publicJwk: { ...publicPart(privateJwk), alg: algorithm, use: 'sig', kid } };
}

/** Imported once as a CryptoKey: given raw bytes, jose would import them again on every verification. */
const hmacKey = (secret: Buffer) =>
  webcrypto.subtle.importKey('raw', secret, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']) as Promise<CryptoKey>;
