import { Elysia } from 'elysia'
import { answers, errors } from '../../shared/model'
import { notFound } from '../../shared/errors'
import { UserIdParams, type UserGuard } from '../users/model'
import { AvatarParams, avatarsModels } from './model'
import type { AvatarService } from './service'
import { AVATAR_TYPE } from './storage'

const UPLOAD_ANSWERS = answers({
  409: '`conflict`: another avatar upload for your account is under way (`upload_under_way`).',
  413: '`payload_too_large`: the form is larger than AVATAR_MAX_BYTES (and room for the form around the file).',
  415: '`unsupported_media_type`: not multipart/form-data, or a file that is not a PNG, JPEG or WebP picture, or whose name or type says another format.',
  422: '`validation_error`: no `avatar_file`, or a file that is empty, cut short, damaged, larger than AVATAR_MAX_DIMENSION, or carries data after its end or markup inside (a polyglot).',
  429: '`rate_limited`: you changed your account ACCOUNT_RATE_LIMIT times within USER_RATE_WINDOW.',
  503: '`unavailable`: too many uploads at once (AVATAR_UPLOADS_AT_ONCE), or the avatar store cannot be reached; try again after `Retry-After`.',
})

/** The route answers bytes, so Elysia is given no response schemas; its errors are documented by hand. */
const ERROR_CONTENT = { 'application/json': { schema: { $ref: '#/components/schemas/ErrorResponse' } } }

/** A year, and never revalidated: the URL names the bytes (their SHA-256), so they never change. */
const FOREVER = 'public, max-age=31536000, immutable'

/** Whether an If-None-Match header names `etag`: one of its list, weak or strong, or `*`. */
const holds = (header: string | null, etag: string) =>
  header !== null && header.split(',').some((tag) => ['*', etag].includes(tag.trim().replace(/^W\//, '')))

/** Avatars: upload and delete your own, an admin deletes anyone's; read one at its URL (local store, or S3 without S3_PUBLIC_URL). */
export const avatarsRoutes = ({ avatars }: { avatars: AvatarService }, guard: UserGuard) =>
  new Elysia({ detail: { tags: ['users'] } })
    .use(guard)
    .use(avatarsModels)
    .put('/users/me/avatar', ({ user, body }) => avatars.upload(user, body.avatar_file), {
      auth: 'user',
      body: 'AvatarUpload',
      parse: 'multipart/form-data',
      response: { 200: 'User', ...errors(400, 401, 403, 408, 409, 413, 415, 422, 429, 503) },
      detail: {
        summary: 'Upload your avatar',
        description:
          'multipart/form-data with one field, `avatar_file`. The picture is decoded, turned upright, scaled to fit AVATAR_SIZE and stored as WebP without any metadata (EXIF, GPS, comments); `avatar_url` in the answer is where it is read. The same picture again changes nothing; the one it replaces is removed. Counts against ACCOUNT_RATE_LIMIT.',
        responses: UPLOAD_ANSWERS,
      },
    })
    .delete('/users/me/avatar', ({ user }) => avatars.remove(user.user_id), {
      auth: 'user',
      response: { 200: 'User', ...errors(401, 403) },
      detail: { summary: 'Delete your avatar', description: '`avatar_url` becomes null and the picture is removed from the store.' },
    })
    .delete('/users/:user_id/avatar', ({ params }) => avatars.remove(params.user_id), {
      auth: 'admin',
      params: UserIdParams,
      response: { 200: 'User', ...errors(400, 401, 403, 404) },
      detail: {
        summary: "Delete a user's avatar (admin)",
        description: 'For moderation: the picture is removed from the store, a deleted account’s too (its URL stays readable wherever it was cached: a year, immutable).',
      },
    })
    .get(
      '/avatars/:user_id/:file',
      async ({ params, request, set }) => {
        const etag = `"${params.file.slice(0, -'.webp'.length)}"`
        // The URL names the bytes: a client holding them by this ETag holds the right ones.
        if (holds(request.headers.get('if-none-match'), etag)) {
          Object.assign(set.headers, { 'cache-control': FOREVER, etag })
          set.status = 304
          return null
        }
        const bytes = await avatars.read(params.user_id, params.file)
        if (!bytes) throw notFound('No such avatar')
        Object.assign(set.headers, {
          'cache-control': FOREVER,
          etag,
          'content-type': AVATAR_TYPE,
          'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
        })
        return bytes
      },
      {
        params: AvatarParams,
        detail: {
          summary: 'An avatar',
          description: 'A WebP picture, cached for a year: its URL names its bytes. `If-None-Match` with its ETag answers 304.',
          responses: {
            200: { description: 'The picture', content: { [AVATAR_TYPE]: { schema: { type: 'string', format: 'binary' } } } },
            304: { description: 'The picture the client holds under this ETag is the one.' },
            400: { description: '`bad_request`: not an avatar URL (a UUID, then a SHA-256 and a nonce in hex, and .webp).', content: ERROR_CONTENT },
            404: { description: '`not_found`: no such avatar.', content: ERROR_CONTENT },
          },
        },
      },
    )
