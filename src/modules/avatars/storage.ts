import { mkdir, rename, rm } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { Config } from '../../config'

/** Where avatar objects live, by key (`<user_id>/<sha256>-<nonce>.webp`); removing a key that is gone succeeds. */
export interface AvatarStorage {
  put(key: string, bytes: Uint8Array): Promise<void>
  remove(key: string): Promise<void>
  /** The object, or undefined when there is none: for the gateway to serve. */
  read(key: string): Promise<Uint8Array | undefined>
  /** Every key stored, for tests and for an operator's audit. */
  keys(): Promise<string[]>
  /** Where clients read the object. */
  url(key: string): string
}

export const AVATAR_TYPE = 'image/webp'

export function avatarStorage(config: Config['avatars']['storage'], gatewayUrl: string): AvatarStorage {
  return config.kind === 'local' ? new FolderStorage(config.directory, gatewayUrl) : new BucketStorage(config, gatewayUrl)
}

/** A folder on this machine (by default under the data directory), served by the gateway. */
class FolderStorage implements AvatarStorage {
  constructor(
    private readonly directory: string,
    private readonly gatewayUrl: string,
  ) {}

  async put(key: string, bytes: Uint8Array): Promise<void> {
    const path = join(this.directory, key)
    await mkdir(dirname(path), { recursive: true })
    // Written aside and renamed: a reader never sees half an avatar, even after a crash.
    const partial = `${path}.${crypto.randomUUID()}.part`
    try {
      await Bun.write(partial, bytes)
      await rename(partial, path)
    } catch (error) {
      await rm(partial, { force: true })
      throw error
    }
  }

  async remove(key: string): Promise<void> {
    await rm(join(this.directory, key), { force: true })
  }

  async read(key: string): Promise<Uint8Array | undefined> {
    try {
      return await Bun.file(join(this.directory, key)).bytes()
    } catch (error) {
      // Never there, or removed a moment ago.
      if ((error as { code?: string }).code === 'ENOENT') return undefined
      throw error
    }
  }

  async keys(): Promise<string[]> {
    return Array.fromAsync(new Bun.Glob('*/*.webp').scan({ cwd: this.directory, onlyFiles: true })).catch(() => [])
  }

  url(key: string): string {
    return `${this.gatewayUrl}/${key}`
  }
}

/** An S3-compatible bucket through Bun's S3 client, under `avatars/`; read through the gateway unless S3_PUBLIC_URL says where clients reach it. */
class BucketStorage implements AvatarStorage {
  readonly #client: Bun.S3Client
  readonly #publicUrl: string

  constructor(config: Extract<Config['avatars']['storage'], { kind: 's3' }>, gatewayUrl: string) {
    const { endpoint, bucket, region, accessKeyId, secretAccessKey } = config
    this.#client = new Bun.S3Client({ endpoint, bucket, region, accessKeyId, secretAccessKey })
    this.#publicUrl = config.publicUrl ? `${config.publicUrl}/${FOLDER}` : gatewayUrl
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    await this.#client.write(PREFIX + key, bytes, { type: AVATAR_TYPE })
  }

  async remove(key: string): Promise<void> {
    await this.#client.delete(PREFIX + key)
  }

  async read(key: string): Promise<Uint8Array | undefined> {
    try {
      return await this.#client.file(PREFIX + key).bytes()
    } catch (error) {
      // A bucket answers AccessDenied for a missing key when the gateway may not list it.
      if (['NoSuchKey', 'AccessDenied'].includes((error as { code?: string }).code ?? '')) return undefined
      throw error
    }
  }

  async keys(): Promise<string[]> {
    const keys: string[] = []
    let continuationToken: string | undefined
    do {
      const page = await this.#client.list({ prefix: PREFIX, continuationToken })
      keys.push(...(page.contents ?? []).map((object) => object.key.slice(PREFIX.length)))
      continuationToken = page.isTruncated ? page.nextContinuationToken : undefined
    } while (continuationToken)
    return keys
  }

  url(key: string): string {
    return `${this.#publicUrl}/${key}`
  }
}

const FOLDER = 'avatars'
const PREFIX = `${FOLDER}/`
