import { nextTurn } from '../../db/batches'
import { type Database, UniqueViolation } from '../../db/database'
import type { UserRateLimiter } from '../../db/rate-limits'
import { isoAfter, nowIso } from '../../lib/clock'
import { conflict, unavailable } from '../../shared/errors'
import type { User } from '../users/model'
import type { UserService } from '../users/service'
import type { AvatarImages } from './image'
import type { AvatarStorage } from './storage'
import type { AvatarStore } from './store'

/** An upload not finished in this time is taken to have died with its instance; its object becomes garbage. */
const STALE_UPLOAD_SECONDS = 600
/** Garbage the immediate removal left (its storage call failed) is retried by the sweep after this. */
const RETRY_REMOVAL_SECONDS = 60
const SWEEP_BATCH = 100

/**
 * Avatars. An upload becomes a WebP of its own (image.ts), stored under a key that names its bytes
 * and is used once: `<user_id>/<sha256>-<nonce>.webp`. The hash makes the URL's content checkable
 * and spots the same picture sent again (nothing is written); the nonce means a removal that
 * arrives late (a DELETE stuck in the network, retried meanwhile) can only ever hit the object it
 * was meant for, never a later upload of the same picture.
 *
 * Every object is recorded before it is written, so none is ever lost track of: `uploading` while
 * it is written (one upload per user at a time: 409 `upload_under_way`), `current` once the account
 * points at it, then `garbage` when replaced, deleted or erased, removed from the storage at once
 * and, if that fails, by the sweep later. The account moves to the new URL only once the object is
 * stored, so a failure anywhere leaves the user with the avatar they had; an upload that finds its
 * record taken from it (its account erased, or its upload declared dead) removes what it wrote.
 */
export class AvatarService {
  /** Users with an upload being decoded on this instance: one each, so one user holds one decoder at most. */
  readonly #decoding = new Set<string>()

  constructor(
    private readonly deps: {
      db: Database
      store: AvatarStore
      storage: AvatarStorage
      images: AvatarImages
      users: UserService
      /** ACCOUNT_RATE_LIMIT: an upload is a change to one's own account. */
      selfChanges: UserRateLimiter
      onError: (message: string, error: unknown) => void
    },
  ) {}

  async upload(user: User, file: File): Promise<User> {
    const { db, store, storage, users } = this.deps
    const userId = user.user_id
    const avatar = await this.#prepare(userId, file)
    const key = `${userId}/${avatar.sha256}-${nonce()}.webp`
    const begun = await db
      .transaction(async (tx) => {
        await tx.lock(lockOf(userId))
        // The same picture as now: nothing to store.
        if (hashOf((await store.findOf(userId, 'current', tx))?.object_key) === avatar.sha256) return false
        const other = await store.findOf(userId, 'uploading', tx)
        if (other && other.changed_at >= isoAfter(-STALE_UPLOAD_SECONDS)) throw uploadUnderWay()
        if (other) await store.setState(other.object_key, 'garbage', nowIso(), tx)
        await store.claim(key, userId, nowIso(), tx)
        return true
      })
      .catch((error) => {
        throw error instanceof UniqueViolation ? uploadUnderWay() : error
      })
    if (!begun) return users.get(userId)
    try {
      await storage.put(key, avatar.bytes)
    } catch (error) {
      this.deps.onError('an avatar could not be stored', error)
      await this.#abandon(key)
      throw unavailable('The avatar store cannot be reached; try again shortly', 5)
    }
    try {
      const { updated, replaced } = await db.transaction(async (tx) => {
        await tx.lock(lockOf(userId))
        if ((await store.find(key, tx))?.state !== 'uploading') throw uploadUnderWay()
        const previous = await store.findOf(userId, 'current', tx)
        if (previous) await store.setState(previous.object_key, 'garbage', nowIso(), tx)
        await store.setState(key, 'current', nowIso(), tx)
        return { updated: await users.setAvatarUrl(userId, storage.url(key), tx), replaced: previous?.object_key }
      })
      if (replaced) await this.#remove(replaced)
      return updated
    } catch (error) {
      await this.#abandon(key)
      throw error
    }
  }

  /** Takes the avatar away: the user's own, or anyone's for an admin (a deleted account's too). */
  async remove(userId: string): Promise<User> {
    const { db, store, users } = this.deps
    const taken = await db.transaction(async (tx) => {
      await tx.lock(lockOf(userId))
      const current = await store.findOf(userId, 'current', tx)
      if (!current) return undefined
      await store.setState(current.object_key, 'garbage', nowIso(), tx)
      return { updated: await users.setAvatarUrl(userId, null, tx), key: current.object_key }
    })
    if (!taken) return users.get(userId)
    await this.#remove(taken.key)
    return taken.updated
  }

  /** An erased account's objects go: the avatar, and any upload under way (which removes what it writes once it sees). */
  async forget(userId: string): Promise<void> {
    const { db, store } = this.deps
    const keys = await db.transaction(async (tx) => {
      await tx.lock(lockOf(userId))
      return store.discardAllOf(userId, nowIso(), tx)
    })
    for (const key of keys) await this.#remove(key)
  }

  /** The object behind an avatar URL, or undefined; only names this service writes are looked up. */
  read(userId: string, file: string): Promise<Uint8Array | undefined> {
    return AVATAR_FILE.test(file) ? this.deps.storage.read(`${userId}/${file}`) : Promise.resolve(undefined)
  }

  /**
   * Finishes what was left: uploads that died with their instance become garbage, and garbage
   * whose removal failed is removed again. Answers how many objects went.
   */
  async sweep(now = Date.now()): Promise<number> {
    const { db, store } = this.deps
    for (;;) {
      const stale = await store.staleUploads(isoAfter(-STALE_UPLOAD_SECONDS, now), SWEEP_BATCH, db)
      for (const key of stale)
        await db.transaction(async (tx) => {
          await tx.lock(lockOf(ownerOf(key)))
          if ((await store.find(key, tx))?.state === 'uploading') await store.setState(key, 'garbage', nowIso(), tx)
        })
      if (stale.length < SWEEP_BATCH) break
      await nextTurn()
    }
    let removed = 0
    for (;;) {
      const left = await store.leftOver(isoAfter(-RETRY_REMOVAL_SECONDS, now), SWEEP_BATCH, db)
      for (const key of left) if (await this.#remove(key)) removed++
      if (left.length < SWEEP_BATCH) return removed
      await nextTurn()
    }
  }

  /** Counted against ACCOUNT_RATE_LIMIT, then decoded, one upload per user at a time on this instance. */
  async #prepare(userId: string, file: File) {
    if (this.#decoding.has(userId)) throw uploadUnderWay()
    this.#decoding.add(userId)
    try {
      await this.deps.selfChanges.consume(userId)
      return await this.deps.images.prepare(file)
    } finally {
      this.#decoding.delete(userId)
    }
  }

  /**
   * An object written (or perhaps written) that will not become an avatar: recorded as garbage,
   * whatever became of its record meanwhile, and removed. Its write has returned by now, so this
   * removal comes after it.
   */
  async #abandon(key: string): Promise<void> {
    const { db, store } = this.deps
    await db.transaction(async (tx) => {
      await tx.lock(lockOf(ownerOf(key)))
      await store.discard(key, ownerOf(key), nowIso(), tx)
    })
    await this.#remove(key)
  }

  /**
   * Removes garbage from the storage: marked `removing`, removed, forgotten. A failure is logged and
   * left for the sweep; the user sees nothing of it, and no later upload can share the key.
   */
  async #remove(key: string): Promise<boolean> {
    const { db, store, storage } = this.deps
    try {
      if (!(await store.markRemoving(key, nowIso(), db))) return false
      await storage.remove(key)
      await store.forget(key, db)
      return true
    } catch (error) {
      this.deps.onError('an old avatar could not be removed; the sweep will try again', error)
      return false
    }
  }
}

/** A stored avatar's name: the SHA-256 of its bytes and the nonce of its upload. */
const AVATAR_FILE = /^[0-9a-f]{64}-[0-9a-f]{16}\.webp$/

const nonce = () => Buffer.from(crypto.getRandomValues(new Uint8Array(8))).toString('hex')
const ownerOf = (key: string) => key.slice(0, key.indexOf('/'))
const hashOf = (key: string | undefined) => key?.slice(key.indexOf('/') + 1, key.indexOf('-', key.indexOf('/')))
const lockOf = (userId: string) => `avatar:${userId}`

function uploadUnderWay() {
  return conflict('upload_under_way', 'Another avatar upload for this account is under way; wait for it to finish')
}
