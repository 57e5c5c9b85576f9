/**
 * @module tenancy/oidc
 * JWTs from an OIDC issuer as bearer tokens, so that a person or service has one identity (and one
 * line in the usage ledger) however many clients it runs, rather than a key per client that splits
 * its spend. A token is checked against the issuer's published keys (its JWKS, found through the
 * discovery document unless configured; jose caches it and refetches at most once per cooldown, so
 * tokens with unknown key ids cannot flood the issuer), then for issuer, audience, expiry and an
 * allowed asymmetric algorithm. Its claims name the tenant, project, roles and subject; the tenant
 * is resolved by the identity resolver exactly as a key's is. A verified token's principal is cached
 * until the token expires or `auth.cacheMs` passes, whichever is first, so a hot token is verified
 * once per interval and a tenant's suspension still reaches it within that bound.
 */
import { type JWTPayload, type JWTVerifyGetKey, createRemoteJWKSet, errors, jwtVerify } from 'jose';
import type { SwitchyardConfig } from '../config/schema.js';
import { tenancyId } from '../config/tenancy-schema.js';
import { SwitchyardError } from '../core/errors.js';
import type { Identity, Principal } from './identity.js';
import { hashToken } from './keys.js';
import { ROLES, type Role } from './types.js';

type OidcConfig = NonNullable<SwitchyardConfig['auth']['oidc']>;

/** A JWS in compact form: three base64url segments, the header a JSON object (`eyJ` = `{"`). The signature may be empty (`alg: none`, refused by the verifier with a reason). */
const COMPACT_JWS = /^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** Seconds of clock skew allowed between the issuer and the gateway (exp, nbf, iat). */
const CLOCK_TOLERANCE_S = 30;
/** Verified tokens cached; past it expired entries go, then the oldest half. */
const CACHE_MAX = 10_000;
const DISCOVERY_TIMEOUT_MS = 5_000;
/** After a failed discovery, requests fail fast for this long before it is tried again. */
const DISCOVERY_RETRY_MS = 5_000;
const SUBJECT_MAX = 256;

/** Whether a bearer token is shaped like a JWT (and not like a key). */
export function looksLikeJwt(token: string): boolean {
  return COMPACT_JWS.test(token);
}

function unauthorized(message: string): SwitchyardError {
  return new SwitchyardError('SWY_ERR_UNAUTHORIZED', message, { param: 'authorization' });
}

/** Why jose refused a token, in words that never include the token. */
function reason(err: unknown, cfg: OidcConfig): string {
  if (err instanceof errors.JWTExpired) return 'it has expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.reason === 'missing') return `it has no "${err.claim}" claim`;
    if (err.claim === 'iss') return `its issuer (iss) is not ${cfg.issuer}`;
    if (err.claim === 'aud') return `its audience (aud) does not include ${cfg.audience}`;
    if (err.claim === 'nbf') return 'it is not valid yet (nbf)';
    return `its "${err.claim}" claim is invalid`;
  }
  if (err instanceof errors.JOSEAlgNotAllowed)
    return `its algorithm is not one of ${cfg.algorithms.join(', ')}`;
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'its signature does not verify';
  if (err instanceof errors.JWKSNoMatchingKey) return 'it is signed by a key the issuer does not publish';
  if (err instanceof errors.JWKSMultipleMatchingKeys)
    return 'its key id matches several of the issuer’s keys';
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid)
    return "the issuer's signing keys could not be fetched";
  if (err instanceof errors.JOSEError) return 'it is malformed';
  // A failed fetch of the JWKS surfaces as a plain error.
  return "the issuer's signing keys could not be fetched";
}

/** A claim by name, or by dot path into nested objects when no claim has the whole name (`org.id`). */
function claim(payload: JWTPayload, path: string): unknown {
  if (Object.hasOwn(payload, path)) return payload[path];
  let v: unknown = payload;
  for (const part of path.split('.')) {
    if (v === null || typeof v !== 'object' || Array.isArray(v) || !Object.hasOwn(v, part)) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

/** An id claim as a string: a string, or an integer (some issuers number organisations). */
function idClaim(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v);
  return null;
}

/** Roles from a claim (a string or an array) through `roleMap`; unknown values ignored, `member` at least. */
function rolesOf(v: unknown, roleMap: Readonly<Record<string, Role>>): Role[] {
  const values = typeof v === 'string' ? [v] : Array.isArray(v) ? v : [];
  const roles = new Set<Role>();
  for (const x of values) if (typeof x === 'string' && Object.hasOwn(roleMap, x)) roles.add(roleMap[x]!);
  return roles.size === 0 ? ['member'] : ROLES.filter((r) => roles.has(r));
}

interface Cached {
  readonly value: Principal | SwitchyardError;
  /** Epoch ms. */
  readonly untilMs: number;
}

interface Discovery {
  readonly keys: Promise<JWTVerifyGetKey>;
  failedMs: number | null;
}

export class OidcVerifier {
  private discovery: Discovery | null = null;
  private readonly cache = new Map<string, Cached>();

  constructor(
    private readonly cfg: OidcConfig,
    private readonly cacheMs: number,
    /** The principal of an identity (its tenant looked up), or why it is refused. */
    private readonly resolve: (id: Identity) => Promise<Principal | SwitchyardError>,
  ) {}

  /** The principal of a JWT; throws 401 saying what failed. */
  async principal(token: string): Promise<Principal> {
    const hash = hashToken(token);
    const now = Date.now();
    const hit = this.cache.get(hash);
    if (hit !== undefined) {
      if (hit.untilMs > now) return unwrap(hit.value);
      this.cache.delete(hash);
    }
    const payload = await this.verify(token);
    const id = this.identityOf(payload, hash);
    const value = id instanceof SwitchyardError ? id : await this.resolve(id);
    this.remember(hash, value, Math.min(payload.exp! * 1000, now + this.cacheMs));
    return unwrap(value);
  }

  /** Forgets verified tokens (after an admin change in this process, e.g. a suspended tenant). */
  invalidate(): void {
    this.cache.clear();
  }

  private async verify(token: string): Promise<JWTPayload> {
    const keys = await this.keys();
    try {
      const { payload } = await jwtVerify(token, keys, {
        issuer: this.cfg.issuer,
        audience: this.cfg.audience,
        algorithms: this.cfg.algorithms,
        clockTolerance: CLOCK_TOLERANCE_S,
        requiredClaims: ['exp'],
      });
      return payload;
    } catch (err) {
      throw unauthorized(`Invalid token: ${reason(err, this.cfg)}`);
    }
  }

  /** The issuer's key set, discovered once (again after a failure, at most every few seconds). */
  private async keys(): Promise<JWTVerifyGetKey> {
    const d = this.discovery;
    if (d === null || (d.failedMs !== null && Date.now() - d.failedMs >= DISCOVERY_RETRY_MS)) {
      const entry: Discovery = {
        keys: this.jwksUrl().then((url) =>
          createRemoteJWKSet(url, { timeoutDuration: DISCOVERY_TIMEOUT_MS }),
        ),
        failedMs: null,
      };
      entry.keys.catch(() => {
        entry.failedMs = Date.now();
      });
      this.discovery = entry;
    }
    try {
      return await this.discovery!.keys;
    } catch (err) {
      throw unauthorized(`The token cannot be verified: OIDC discovery failed (${(err as Error).message})`);
    }
  }

  private async jwksUrl(): Promise<URL> {
    if (this.cfg.jwksUrl !== undefined) return new URL(this.cfg.jwksUrl);
    const url = `${this.cfg.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    const res = await fetch(url, {
      headers: { accept: 'application/json' },
      signal: AbortSignal.timeout(DISCOVERY_TIMEOUT_MS),
    });
    if (!res.ok) throw new Error(`${url} answered ${res.status}`);
    const doc = (await res.json()) as { issuer?: unknown; jwks_uri?: unknown };
    // OIDC Discovery 1.0 §4.3: the document must name the issuer it was fetched for.
    if (doc.issuer !== this.cfg.issuer) throw new Error(`${url} names another issuer`);
    if (typeof doc.jwks_uri !== 'string') throw new Error(`${url} has no jwks_uri`);
    return new URL(doc.jwks_uri);
  }

  /** Tenant, project, roles and subject from a verified token's claims. */
  private identityOf(payload: JWTPayload, hash: string): Identity | SwitchyardError {
    const c = this.cfg.claims;
    const tenant = idClaim(claim(payload, c.tenant));
    if (tenant === null) return unauthorized(`The token has no "${c.tenant}" claim naming its tenant`);
    if (!tenancyId.safeParse(tenant).success)
      return unauthorized(`The token's "${c.tenant}" claim is not a valid tenant id`);
    let project: string | null = null;
    const rawProject = c.project === undefined ? undefined : claim(payload, c.project);
    if (rawProject !== undefined && rawProject !== null) {
      project = idClaim(rawProject);
      if (project === null || !tenancyId.safeParse(project).success)
        return unauthorized(`The token's "${c.project}" claim is not a valid project id`);
    }
    const subject = idClaim(claim(payload, c.subject));
    if (subject === null || subject.length === 0 || subject.length > SUBJECT_MAX)
      return unauthorized(`The token has no usable "${c.subject}" claim naming its subject`);
    const roles = rolesOf(c.roles === undefined ? undefined : claim(payload, c.roles), this.cfg.roleMap);
    return { keyId: `oidc:${subject}`, keyHash: hash, tenant, project, roles };
  }

  private remember(hash: string, value: Principal | SwitchyardError, untilMs: number): void {
    if (untilMs <= Date.now()) return;
    if (this.cache.size >= CACHE_MAX) {
      const now = Date.now();
      for (const [h, e] of this.cache) if (e.untilMs <= now) this.cache.delete(h);
      // Still full: drop the oldest half (a Map iterates in insertion order).
      if (this.cache.size >= CACHE_MAX)
        for (const h of this.cache.keys()) {
          if (this.cache.size < CACHE_MAX / 2) break;
          this.cache.delete(h);
        }
    }
    this.cache.set(hash, { value, untilMs });
  }
}

function unwrap(v: Principal | SwitchyardError): Principal {
  if (v instanceof SwitchyardError) throw v;
  return v;
}
