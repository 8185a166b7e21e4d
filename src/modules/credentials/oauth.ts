import { batchRows, inBatches } from '../../db/batches'
import type { Database, Transaction } from '../../db/database'
import { UniqueViolation } from '../../db/database'
import { isoAfter, nowIso } from '../../lib/clock'
import { randomToken, sha256 } from '../../lib/crypto'
import { ApiError, accessDenied, accountDeleted, accountInactive, badRequest, conflict, notFound } from '../../shared/errors'
import type { Grant, SessionService } from '../sessions/service'
import type { User } from '../users/model'
import type { UserService } from '../users/service'
import type { OAuthProvider, ProviderProfile } from './oauth-providers'
import type { Identity, OAuthStore } from './oauth-store'

/** What a callback brings back from the provider (a code, or the reason there is none), and the secret of the page that started it. */
export interface Callback {
  state: string
  flow_secret: string
  code?: string
  error?: string
}

const SECRET_BYTES = 32
const USERNAME_TRIES = 5
const REGISTER_ATTEMPTS = 3

/**
 * Signing in with a provider (Yandex ID, or any standard OAuth 2.0 / OIDC server of OAUTH_PROVIDERS):
 * the authorization code flow with PKCE and `state`. The page that starts it keeps the state and
 * checks it when the provider sends the browser back; the service keeps the verifier (the state
 * only as its hash) and spends the state once. The first sign-in with an account of a provider
 * registers a user with that identity, later ones log in; a user who is logged in links one. An
 * account is never found by its email address: an address can change hands at a provider.
 */
export class OAuthSignIn {
  constructor(
    private readonly deps: {
      db: Database
      store: OAuthStore
      users: UserService
      sessions: SessionService
      providers: OAuthProvider[]
      /** Seconds a sign-in may take from its start to its callback. */
      stateTtl: number
    },
  ) {}

  list(): Array<{ id: string; name: string }> {
    return this.deps.providers.map(({ id, name }) => ({ id, name }))
  }

  /**
   * Where to send the browser, the state to keep until it comes back, and the flow's secret, which
   * never goes in a URL: the code and state the browser comes back with are worth nothing without
   * it. `user` links instead of logging in.
   */
  async start(providerId: string, user?: User): Promise<{ authorize_url: string; state: string; flow_secret: string }> {
    const provider = this.#provider(providerId)
    const state = randomToken(SECRET_BYTES)
    const flowSecret = randomToken(SECRET_BYTES)
    const codeVerifier = randomToken(SECRET_BYTES)
    const now = Date.now()
    await this.deps.store.insertState(
      { state: sha256(state), secret: sha256(flowSecret) },
      { provider: provider.id, code_verifier: codeVerifier, user_id: user?.user_id ?? null },
      new Date(now).toISOString(),
      isoAfter(this.deps.stateTtl, now),
      this.deps.db,
    )
    const challenge = new Bun.CryptoHasher('sha256').update(codeVerifier).digest('base64url')
    return { authorize_url: provider.authorizeUrl(state, challenge), state, flow_secret: flowSecret }
  }

  /** Logs in with the provider's account, registering a user at its first sign-in. */
  async logIn(providerId: string, callback: Callback): Promise<Grant & { registered: boolean }> {
    const { provider, profile } = await this.#returned(providerId, callback, null)
    const { users, db, store } = this.deps
    const found = await store.holderOf(provider.id, profile.subject, db)
    if (found) {
      const user = await users.get(found.user_id)
      if (user.status === 'deleted') throw accountDeleted()
      if (!user.is_active) throw accountInactive()
      await store.signedIn(found.identity_id, nowIso(), profile.email, profile.login, db)
      return { ...(await this.deps.sessions.open(user)), registered: false }
    }
    const { userId, registered } = await this.#registerOnce(provider.id, profile)
    return { ...(await this.deps.sessions.open(await users.get(userId))), registered }
  }

  /** Links the provider's account to `user`, who started the sign-in. */
  async link(providerId: string, callback: Callback, user: User, sessionId: string): Promise<Identity> {
    const { provider, profile } = await this.#returned(providerId, callback, user.user_id)
    // A new way in: only for a session that is live in the store this moment.
    await this.deps.sessions.authenticate(sessionId, user.user_id, { fresh: true })
    const identity = newIdentity(provider.id, profile)
    try {
      await this.deps.store.insert(user.user_id, identity, this.deps.db)
    } catch (error) {
      if (!(error instanceof UniqueViolation)) throw error
      const holder = await this.deps.store.holderOf(provider.id, profile.subject, this.deps.db)
      if (holder && holder.user_id !== user.user_id) throw conflict('link_taken', `That ${provider.name} account signs in to another user`)
      throw conflict('already_linked', `A ${provider.name} account is linked already; unlink it first`)
    }
    return identity
  }

  identities(user: User): Promise<Identity[]> {
    return this.deps.store.list(user.user_id, this.deps.db)
  }

  /** Unlinks an identity, unless it is the account's last way in (no password, no other identity). */
  async unlink(user: User, identityId: string): Promise<void> {
    const { db, store, users } = this.deps
    await db.transaction(async (tx) => {
      await tx.lock(`identities:${user.user_id}`)
      const held = await store.list(user.user_id, tx)
      if (!held.some((identity) => identity.identity_id === identityId)) throw notFound('No such identity on this account')
      if (held.length === 1 && !(await users.hasPassword(user.user_id, tx)))
        throw conflict('last_way_in', 'This is the only way to log in to the account; link another provider first')
      await store.remove(user.user_id, identityId, tx)
    })
  }

  /** Forgets sign-ins that were never finished, a batch at a time. */
  purgeExpired(now = Date.now(), batchSize = batchRows(this.deps.db)): Promise<number> {
    return inBatches((limit) => this.deps.store.deleteExpiredStates(new Date(now).toISOString(), limit, this.deps.db), batchSize)
  }

  /** The provider's account behind a callback, once its state (started by `userId`, or to log in) is spent. */
  async #returned(providerId: string, { state, flow_secret, code, error }: Callback, userId: string | null) {
    const provider = this.#provider(providerId)
    const started = await this.deps.store.takeState({ state: sha256(state), secret: sha256(flow_secret) }, nowIso(), this.deps.db)
    // A state started by another account, or to log in rather than link, is as unknown here.
    if (!started || started.provider !== provider.id || started.user_id !== userId)
      throw badRequest('Unknown, used or expired state, or not with the secret of the page that started it: start the sign-in again')
    if (error !== undefined) throw accessDenied(`The sign-in was not allowed at ${provider.name} (${error})`)
    if (code === undefined) throw badRequest('The callback brings neither a code nor an error')
    return { provider, profile: await provider.profile(code, started.code_verifier) }
  }

  /**
   * #register in a transaction of its own, again if it failed other than by a refusal: a username
   * taken by a concurrent registration fails the insert, and PostgreSQL then refuses the rest of that
   * transaction, so the next name is tried in a fresh one.
   */
  async #registerOnce(providerId: string, profile: ProviderProfile): Promise<{ userId: string; registered: boolean }> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.deps.db.transaction((tx) => this.#register(providerId, profile, tx))
      } catch (error) {
        if (error instanceof ApiError || attempt === REGISTER_ATTEMPTS) throw error
      }
    }
  }

  /** A new user for a provider's account, named after its login where that name is free; serialised per account. */
  async #register(providerId: string, profile: ProviderProfile, tx: Transaction): Promise<{ userId: string; registered: boolean }> {
    const { store, users } = this.deps
    await tx.lock(`identity:${providerId}:${profile.subject}`)
    // Another first sign-in of the same account got here first: this one logs in to what it made.
    const raced = await store.holderOf(providerId, profile.subject, tx)
    if (raced) return { userId: raced.user_id, registered: false }
    const base = usernameFrom(profile)
    // The provider's display name, while this service's rules for one accept it.
    let displayName = profile.displayName ? { display_name: profile.displayName.slice(0, 64) } : {}
    let attempt = 0
    for (;;) {
      const username = attempt === 0 ? base : attempt < USERNAME_TRIES ? `${base.slice(0, 29)}_${attempt + 1}` : `${base.slice(0, 23)}_${randomToken(6).replace(/-/g, '_')}`
      try {
        const user = await users.createWithoutPassword({ username, ...displayName }, tx)
        await store.insert(user.user_id, newIdentity(providerId, profile), tx)
        return { userId: user.user_id, registered: true }
      } catch (failure) {
        if (!(failure instanceof ApiError) || attempt > USERNAME_TRIES) throw failure
        if (failure.code === 'validation_error' && 'display_name' in displayName) displayName = {}
        else if (failure.reason === 'username_taken') attempt++
        else throw failure
      }
    }
  }

  #provider(id: string): OAuthProvider {
    const provider = this.deps.providers.find((each) => each.id === id)
    if (!provider) throw notFound('No such sign-in provider')
    return provider
  }
}

function newIdentity(provider: string, profile: ProviderProfile): Identity {
  const now = nowIso()
  return { identity_id: Bun.randomUUIDv7(), provider, subject: profile.subject, email: profile.email, login: profile.login, created_at: now, last_sign_in_at: now }
}

/** A username of A-Z a-z 0-9 _ . - from the provider's login (or its name), 3..32 characters. */
function usernameFrom(profile: ProviderProfile): string {
  const name = (profile.login ?? profile.displayName ?? '').normalize('NFKD').replace(/[^A-Za-z0-9_.-]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 32)
  return name.length >= 3 ? name : `player_${randomToken(6).replace(/-/g, '_')}`
}
