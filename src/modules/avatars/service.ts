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
 * Avatars: an upload becomes a WebP of its own (image.ts), stored under `<user_id>/<sha256>.webp`,
 * so a URL always means the same picture. Every object is recorded before it is written, so none is
 * ever lost track of: `uploading` while it is written (one upload per user at a time; another gets
 * 409 `upload_under_way`), `current` once the account points at it, then `garbage` when replaced,
 * deleted or erased, removed from the storage at once and, if that fails, by the sweep later. The
 * account moves to the new URL only after the object is stored, so a failure anywhere leaves the
 * user with the avatar they had.
 */
export class AvatarService {
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
    const { db, store, storage, images, users } = this.deps
    const userId = user.user_id
    await this.deps.selfChanges.consume(userId)
    const avatar = await images.prepare(file)
    const key = `${userId}/${avatar.sha256}.webp`
    const begun = await db.transaction(async (tx) => {
      await tx.lock(lockOf(userId))
      const object = await store.find(key, tx)
      if (object?.state === 'current') return false
      if (object?.state === 'removing') throw unavailable('This picture is being removed from the store; send it again in a moment', 1)
      const other = await store.findOf(userId, 'uploading', tx)
      if (other && other.changed_at >= isoAfter(-STALE_UPLOAD_SECONDS)) throw uploadUnderWay()
      if (other) await store.setState(other.object_key, 'garbage', nowIso(), tx)
      await store.claim(key, userId, nowIso(), tx)
      return true
    }).catch((error) => {
      throw error instanceof UniqueViolation ? uploadUnderWay() : error
    })
    // The same picture as now: nothing to store.
    if (!begun) return users.get(userId)
    try {
      await storage.put(key, avatar.bytes)
    } catch (error) {
      this.deps.onError('an avatar could not be stored', error)
      await this.#discard(key)
      throw unavailable('The avatar store cannot be reached; try again shortly', 5)
    }
    try {
      const { updated, replaced } = await db.transaction(async (tx) => {
        await tx.lock(lockOf(userId))
        // Taken over as stale, or discarded by an erasure, while it was being written.
        if ((await store.find(key, tx))?.state !== 'uploading') throw uploadUnderWay()
        const previous = await store.findOf(userId, 'current', tx)
        if (previous) await store.setState(previous.object_key, 'garbage', nowIso(), tx)
        await store.setState(key, 'current', nowIso(), tx)
        return { updated: await users.setAvatarUrl(userId, storage.url(key), tx), replaced: previous?.object_key }
      })
      if (replaced) await this.#remove(replaced)
      return updated
    } catch (error) {
      await this.#discard(key)
      throw error
    }
  }

  /** Takes the avatar away (the user's own, or anyone's for an admin); the account must be live. */
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

  /** An erased account's objects go: the avatar, and any upload under way. */
  async forget(userId: string): Promise<void> {
    const { db, store } = this.deps
    const keys = await db.transaction(async (tx) => {
      await tx.lock(lockOf(userId))
      return store.discardAllOf(userId, nowIso(), tx)
    })
    for (const key of keys) await this.#remove(key)
  }

  /** The object behind an avatar URL, or undefined; only keys this service writes are looked up. */
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
      for (const key of stale) await this.#discard(key, false)
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

  /** An object that will not become anyone's avatar: garbage, and removed now unless told to leave it for the sweep. */
  async #discard(key: string, removeNow = true): Promise<void> {
    const { db, store } = this.deps
    const userId = key.slice(0, key.indexOf('/'))
    await db.transaction(async (tx) => {
      await tx.lock(lockOf(userId))
      const object = await store.find(key, tx)
      if (object?.state === 'uploading') await store.setState(key, 'garbage', nowIso(), tx)
    })
    if (removeNow) await this.#remove(key)
  }

  /**
   * Removes garbage from the storage: marked `removing` first, so that an upload of the same picture
   * waits instead of writing an object this removal would then take away; forgotten once gone.
   * A failure is logged and left for the sweep; the user sees nothing of it.
   */
  async #remove(key: string): Promise<boolean> {
    const { db, store, storage } = this.deps
    const userId = key.slice(0, key.indexOf('/'))
    try {
      const marked = await db.transaction(async (tx) => {
        await tx.lock(lockOf(userId))
        return store.markRemoving(key, nowIso(), tx)
      })
      if (!marked) return false
      await storage.remove(key)
      await store.forget(key, db)
      return true
    } catch (error) {
      this.deps.onError('an old avatar could not be removed; the sweep will try again', error)
      return false
    }
  }
}

const AVATAR_FILE = /^[0-9a-f]{64}\.webp$/

const lockOf = (userId: string) => `avatar:${userId}`

function uploadUnderWay() {
  return conflict('upload_under_way', 'Another avatar upload for this account is under way; wait for it to finish')
}
