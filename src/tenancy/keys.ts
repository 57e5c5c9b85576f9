/**
 * @module tenancy/keys
 * API key tokens: 32 random bytes shown once at creation (`sk-swy-` + base64url), stored only as
 * a SHA-256 hash with a short visible prefix to recognise them. A plain hash suffices because the
 * token carries 256 bits of entropy: no dictionary can reach it, so a slow password hash would buy
 * nothing and cost every request. Lookups go by hash; the final comparison is constant-time.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const TOKEN_PREFIX = 'sk-swy-';
/** Characters of the token kept visible (the `sk-swy-` prefix and 6 more). */
const VISIBLE = TOKEN_PREFIX.length + 6;

/** A new key: the token (shown once), its hash and its visible prefix. */
export interface NewToken {
  readonly token: string;
  readonly hash: string;
  readonly prefix: string;
}

export function newToken(): NewToken {
  const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
  return { token, hash: hashToken(token), prefix: visiblePrefix(token) };
}

/** Hex SHA-256 of a token. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** What a log or the admin API may show of a token. */
export function visiblePrefix(token: string): string {
  return token.slice(0, VISIBLE);
}

/** A new public key id (`key_` + 16 hex characters). */
export function newKeyId(): string {
  return `key_${randomBytes(8).toString('hex')}`;
}

/** Constant-time equality of two hex hashes of equal length (false when lengths differ). */
export function sameHash(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  return timingSafeEqual(Buffer.from(a, 'hex'), Buffer.from(b, 'hex'));
}

/** The bearer token of a request: `Authorization: Bearer T` or Azure's `api-key: T`. */
export function bearerToken(headers: {
  authorization?: string | undefined;
  'api-key'?: string | string[] | undefined;
}): string | null {
  const auth = headers.authorization;
  if (auth !== undefined && auth.length > 7 && auth.slice(0, 7).toLowerCase() === 'bearer ') {
    const t = auth.slice(7).trim();
    return t.length > 0 ? t : null;
  }
  const k = headers['api-key'];
  return typeof k === 'string' && k.length > 0 ? k : null;
}
