import { renderSVG } from 'uqr'
import { batchRows, inBatches } from '../../db/batches'
import type { Database } from '../../db/database'
import type { UserRateLimiter } from '../../db/rate-limits'
import { isoAfter, nowIso } from '../../lib/clock'
import { randomToken, sha256 } from '../../lib/crypto'
import { describeDevice } from '../../lib/device'
import { accessDenied, authorizationPending, expiredToken, invalidField, invalidProof, notFound, slowDown } from '../../shared/errors'
import { loginRequestStream } from '../events/model'
import type { EventFeed } from '../events/feed'
import type { EventLog } from '../events/service'
import type { Grant, SessionService } from '../sessions/service'
import type { User } from '../users/model'
import type { PublicKeyJwk, QrLoginRequest, QrLoginStarted, QrLoginStartRequest, QrSealedTokens } from './model'
import { canonicalSealingKey, sealerTo } from './sealed'
import type { LoginRequestRow, LoginRequestStore } from './qr-store'

/** Seconds, all of them. */
export interface QrLoginPolicy {
  /** How long a request can be approved and exchanged. */
  ttl: number
  /** How long an exchange waits for the phone's decision before it answers authorization_pending. */
  wait: number
  /** The least time between two polls of one pending request. */
  interval: number
}

/** Where a desktop's request comes from, as the phone will be shown it. */
export interface Origin {
  address: string
  userAgent: string
}

const CODE_BYTES = 16
const USER_AGENT_KEPT = 512

/** What the desktop signs, with its key, to exchange an approved request. */
export const signedMessage = (requestId: string) => `qr-login:${requestId}`

const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const

// 64 short words a person reads out easily: four of them name a desktop's key (24 bits).
const WORDS = (
  'amber anchor apple arrow badge bamboo basil beacon birch bison cedar cobalt comet copper coral crane delta ' +
  'ember falcon fern fjord garnet glacier harbor hazel heron indigo iris jade kettle lantern lemon lotus ' +
  'maple marble meadow nectar nickel oasis olive onyx orbit otter pepper pine planet quartz raven ripple ' +
  'saffron salmon silver spruce summit tiger topaz tulip velvet violet walnut willow yarrow zephyr zinc'
).split(' ')

/**
 * Logging a desktop in from a phone that is logged in already, by QR code (issue 22).
 *
 * The desktop makes a key pair it cannot export (WebCrypto) and starts a request with the public
 * half; the QR shows only a one-time code. The phone, logged in, scans it, is shown where the request
 * comes from (address, device, time, and four words the desktop shows too) and approves or denies.
 * The desktop exchanges the approved request for a session of its own by signing its id with its
 * key, and the tokens come back sealed to a second key of its own (sealed.ts): whoever else saw the
 * code holds nothing to exchange, and a copy of an exchange or of its answer opens nothing. No token
 * passes through the phone, the code or a URL. The exchange waits (up to `wait`) for the decision, woken across instances by the
 * event the decision commits with, and answers as RFC 8628's polling does while there is none.
 */
export class QrLogin {
  constructor(
    private readonly deps: {
      db: Database
      store: LoginRequestStore
      sessions: SessionService
      events: EventLog
      feed: EventFeed
      /** Per client address: requests started. */
      starts: UserRateLimiter
      /** Per user: requests looked at, approved or denied. */
      decisions: UserRateLimiter
      policy: QrLoginPolicy
    },
  ) {}

  /** A new request for the desktop at `origin`, bound to `publicKey`; `lobbyUrl` is where the QR sends the phone. */
  async start({ public_key: publicKey, encryption_key: encryptionKey }: QrLoginStartRequest, origin: Origin, lobbyUrl: string): Promise<QrLoginStarted> {
    const { store, db, policy, starts } = this.deps
    await starts.consume(origin.address)
    await importPublicKey(publicKey)
    const sealingKey = await canonicalSealingKey(encryptionKey).catch(() => {
      throw invalidField('/encryption_key', 'Not a P-256 public key: x and y must be a point on the curve')
    })
    const requestId = Bun.randomUUIDv7()
    const code = randomToken(CODE_BYTES)
    const now = Date.now()
    await store.insert(
      {
        request_id: requestId,
        code_hash: sha256(code),
        public_key: JSON.stringify({ kty: publicKey.kty, crv: publicKey.crv, x: publicKey.x, y: publicKey.y }),
        encryption_key: JSON.stringify(sealingKey),
        address: origin.address,
        user_agent: origin.userAgent.slice(0, USER_AGENT_KEPT),
        created_at: new Date(now).toISOString(),
        expires_at: isoAfter(policy.ttl, now),
      },
      db,
    )
    // The code rides in the fragment, which browsers never send to a server.
    const link = `${lobbyUrl}#qr-login=${code}`
    return {
      request_id: requestId,
      code,
      link,
      qr_svg: renderSVG(link, { border: 2 }),
      verification_words: verificationWords(publicKey),
      expires_in: policy.ttl,
      interval: policy.interval,
    }
  }

  /** What the phone shows before its user decides. */
  async inspect(user: User, code: string): Promise<QrLoginRequest> {
    await this.deps.decisions.consume(user.user_id)
    const row = await this.deps.store.findPending(sha256(code), nowIso(), this.deps.db)
    if (!row) throw noPendingRequest()
    return describe(row)
  }

  /**
   * Approves or denies the pending request behind `code`, by the user's session `sessionId`; the
   * desktop waiting on it hears at once, on any instance.
   */
  async decide(user: User, sessionId: string, code: string, approved: boolean): Promise<void> {
    const { decisions, db, store, events } = this.deps
    await decisions.consume(user.user_id)
    await db.transaction(async (tx) => {
      const requestId = await store.decide(sha256(code), approved ? 'approved' : 'denied', { userId: user.user_id, sessionId }, nowIso(), tx)
      if (!requestId) throw noPendingRequest()
      await events.emit(tx, [loginRequestStream(requestId), { type: 'login_request_decided', request_id: requestId, approved }])
    })
  }

  /**
   * The desktop's exchange: proves it holds the request's key, waits for the decision while there
   * is none, and spends an approved request, once, for a session of the user who approved it,
   * whose tokens, from `tokens`, are sealed so that the desktop's encryption key alone opens them.
   */
  async exchange(requestId: string, signature: string, tokens: (grant: Grant) => Promise<object>, signal?: AbortSignal): Promise<QrSealedTokens> {
    const { store, db } = this.deps
    const found = await store.find(requestId, db)
    if (!found?.encryption_key || found.expires_at <= nowIso()) throw expiredToken('The request has expired or does not exist; start a new one')
    if (!(await verifySignature(found.public_key, signature, signedMessage(requestId)))) throw invalidProof()
    const request = found.status === 'pending' ? await this.#decision(found, signal) : found
    if (request.status === 'pending') throw request.expires_at <= nowIso() ? expiredToken('The request expired undecided') : authorizationPending()
    if (request.status === 'denied') throw accessDenied('The request was denied on the phone')
    if (request.status === 'exchanged') throw expiredToken('The request was exchanged already')
    // An approval is only as good as the session that gave it: ended since (a logout, a password change, the account's end), it is void.
    const user = await this.#approver(request)
    if (!user) throw accessDenied('The session that approved the request has ended, or its account can no longer log in')
    const seal = await sealerTo(JSON.parse(found.encryption_key), requestId)
    if (!(await store.spend(requestId, nowIso(), db))) throw expiredToken('The request was exchanged already')
    const grant = await this.deps.sessions.open(user, (sessionId) => ({ type: 'device_logged_in', session_id: sessionId, address: request.address, device: describeDevice(request.user_agent) }))
    return seal(JSON.stringify(await tokens(grant)))
  }

  async #approver({ decided_by, decided_session }: LoginRequestRow): Promise<User | undefined> {
    if (!decided_by || !decided_session) return undefined
    const user = await this.deps.sessions.authenticate(decided_session, decided_by, { fresh: true }).catch(() => undefined)
    return user?.status === 'active' ? user : undefined
  }

  /** Waits for the pending `request` to be decided, up to `wait` and its expiry; answers it as it then stands. */
  async #decision(request: LoginRequestRow, signal?: AbortSignal): Promise<LoginRequestRow> {
    const { store, db, feed, policy } = this.deps
    const now = Date.now()
    // One waiter at a time, and after it (or after an answer with no wait) none sooner than `interval`.
    const waitingUntil = isoAfter(Math.max(policy.wait, policy.interval), now)
    if (!(await store.poll(request.request_id, new Date(now).toISOString(), waitingUntil, db))) throw slowDown(policy.interval)
    const stream = loginRequestStream(request.request_id)
    const { promise: decided, resolve: wake } = Promise.withResolvers<void>()
    const stop = feed.follow(stream, () => wake())
    const timer = setTimeout(wake, Math.min(policy.wait * 1000, Date.parse(request.expires_at) - now))
    signal?.addEventListener('abort', () => wake(), { once: true })
    try {
      // Read once the stream's place is known: a decision before it is read here, one after it wakes the wait.
      const current = await feed.at(stream, () => store.find(request.request_id, db))
      if (current?.status !== 'pending') return current ?? request
      await decided
      return (await store.find(request.request_id, db)) ?? request
    } finally {
      clearTimeout(timer)
      stop()
    }
  }

  /** Forgets requests once they expire (a minute's grace for an exchange under way), a batch at a time. */
  purgeExpired(now = Date.now(), batchSize = batchRows(this.deps.db)): Promise<number> {
    return inBatches((limit) => this.deps.store.deleteExpired(isoAfter(-60, now), limit, this.deps.db), batchSize)
  }
}

const noPendingRequest = () => notFound('No login request is waiting under this code: it was decided, expired, or never existed')

function describe(row: LoginRequestRow): QrLoginRequest {
  return {
    address: row.address,
    device: describeDevice(row.user_agent),
    user_agent: row.user_agent,
    created_at: row.created_at,
    expires_at: row.expires_at,
    verification_words: verificationWords(JSON.parse(row.public_key)),
  }
}

/** Four words from the key's RFC 7638 thumbprint: the desktop shows them, and so does the phone. */
function verificationWords({ crv, kty, x, y }: PublicKeyJwk): string[] {
  const thumbprint = new Bun.CryptoHasher('sha256').update(JSON.stringify({ crv, kty, x, y })).digest()
  const bits = (thumbprint[0]! << 16) | (thumbprint[1]! << 8) | thumbprint[2]!
  return [18, 12, 6, 0].map((shift) => WORDS[(bits >> shift) & 63]!)
}

async function importPublicKey(jwk: PublicKeyJwk): Promise<CryptoKey> {
  try {
    return await crypto.subtle.importKey('jwk', { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }, ECDSA_P256, false, ['verify'])
  } catch {
    throw invalidField('/public_key', 'Not a P-256 public key: x and y must be a point on the curve')
  }
}

/** An ECDSA P-256 signature over SHA-256, as WebCrypto makes it (r and s, 32 bytes each), in base64url. */
async function verifySignature(publicKey: string, signature: string, message: string): Promise<boolean> {
  const key = await importPublicKey(JSON.parse(publicKey))
  const bytes = Buffer.from(signature, 'base64url')
  if (bytes.length !== 64) return false
  return crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, key, bytes, new TextEncoder().encode(message))
}
