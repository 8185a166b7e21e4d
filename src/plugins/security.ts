import { Elysia } from 'elysia'
import { nextTurn } from '../db/batches'
import { badRequest, payloadTooLarge, rateLimited, requestTimeout, unavailable, unsupportedMediaType } from '../shared/errors'

interface HttpPolicy {
  corsOrigins: string[]
  maxBodyBytes: number
  /** Seconds a client has to send the whole body. */
  bodyTimeout: number
  /** Bodies being read at once, at most: each holds up to maxBodyBytes until it is parsed or refused. */
  maxConcurrentBodies: number
  /** The kind of body the route takes; any other route never reads one. */
  bodyOf: (method: string, route: string) => BodyKind | undefined
  /** Files (multipart/form-data), on the routes that take them. */
  uploads: UploadPolicy
}

export type BodyKind = 'json' | 'multipart'

interface UploadPolicy {
  /** The largest multipart body: the file's own limit and room for the form around it. */
  maxBytes: number
  /** Uploads read at once, at most; then 503. One account reads one at a time; then 429. */
  atOnce: number
  /** The account of the request's access token, if its session is live: nobody else gets a file read. */
  uploader: (request: Request) => Promise<string | undefined>
}

/** Our bodies nest three levels at most; anything far deeper is an attack on the parser or the validator. */
export const MAX_JSON_DEPTH = 32

const JSON_CONTENT_TYPE = /^application\/json\s*(;|$)/i
const MULTIPART_CONTENT_TYPE = /^multipart\/form-data\s*;(.*;)?\s*boundary=/i
const CORS_METHODS = 'GET, POST, PUT, DELETE, OPTIONS'
const CORS_HEADERS = 'Authorization, Content-Type, X-Request-Id'
const CORS_EXPOSED = 'X-Request-Id, X-User-Id, X-User-Role, Retry-After'

/** On every answer; the Swagger page drops the two framing ones (plugins/docs.ts). */
export const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'content-security-policy': "frame-ancestors 'none'",
  'cache-control': 'no-store',
}

/**
 * A handler answering `body()` as a file of a web page served by the service (Swagger UI, the lobby,
 * the protocol page): its type, its cache rule, and the page's own content security `policy`, which
 * replaces the API's (frame-ancestors only, above).
 */
export const pageFile =
  (policy: string) =>
  <Body>(type: string, cache: string, body: () => Body) =>
  ({ set }: { set: { headers: Record<string, string | number> } }) => {
    Object.assign(set.headers, { 'content-type': type, 'content-security-policy': policy, 'cache-control': cache })
    return body()
  }

/**
 * Security headers on every answer (static: set once, not per request), CORS for the configured
 * origins only, and the body rules, all checked before any parsing or validation work: JSON only
 * (415), at most `maxBodyBytes` (413, whether the size is declared or the body is chunked), sent
 * within `bodyTimeout` seconds (408), nested at most MAX_JSON_DEPTH deep (400), and no more than
 * `maxConcurrentBodies` read at once (503). A route that takes no body never reads one, so it
 * answers as if none was sent (and a caller without a token gets its 401). A route that takes a
 * file takes multipart/form-data instead, under the upload policy: read only for a caller with a
 * live session, one per account at a time, at most `uploads.maxBytes`, `uploads.atOnce` at once.
 */
export const security = ({ corsOrigins, maxBodyBytes, bodyTimeout, maxConcurrentBodies, bodyOf, uploads }: HttpPolicy) => {
  const jsonLimits = { bytes: maxBodyBytes, milliseconds: bodyTimeout * 1000 }
  const uploadLimits = { bytes: uploads.maxBytes, milliseconds: bodyTimeout * 1000 }
  const reading = { json: 0, multipart: 0 }
  const uploading = new Set<string>()
  /** Reads a body within its limits, counted while it arrives. */
  const read = async (request: Request, kind: BodyKind): Promise<Uint8Array> => {
    const [limits, atOnce, contentType] =
      kind === 'json' ? [jsonLimits, maxConcurrentBodies, JSON_CONTENT_TYPE] : [uploadLimits, uploads.atOnce, MULTIPART_CONTENT_TYPE]
    if (Number(request.headers.get('content-length')) > limits.bytes) throw payloadTooLarge(limits.bytes)
    if (!contentType.test(request.headers.get('content-type') ?? '')) throw unsupportedMediaType(`Send the body as ${kind === 'json' ? 'application/json' : 'multipart/form-data'}`)
    if (reading[kind] >= atOnce) throw unavailable('Too many request bodies are arriving at once; try again shortly', 1)
    reading[kind]++
    try {
      return await readBody(request, limits)
    } finally {
      reading[kind]--
    }
  }
  const plugin = new Elysia({ name: 'security' })
    .headers(SECURITY_HEADERS)
    .onParse({ as: 'global' }, async ({ request, route }) => {
      const kind = request.body === null || request.headers.get('content-length') === '0' ? undefined : bodyOf(request.method, route)
      if (kind === undefined) return null
      if (kind === 'multipart') {
        // No file is read for a caller the route will refuse: the auth guard answers 401 next.
        const uploader = await uploads.uploader(request)
        if (uploader === undefined) return null
        // One at a time per account, so that one account cannot hold every upload slot open.
        if (uploading.has(uploader)) throw rateLimited('Send one file at a time', 1)
        uploading.add(uploader)
        try {
          const body = await read(request, kind)
          await nextTurn()
          return await formFields(body, request.headers.get('content-type')!)
        } finally {
          uploading.delete(uploader)
        }
      }
      const text = Buffer.from(await read(request, kind)).toString('utf8')
      if (text.trim() === '') return null
      if (nestsDeeperThan(text, MAX_JSON_DEPTH))
        throw badRequest(`The request body nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels`)
      try {
        return JSON.parse(text)
      } catch {
        throw badRequest('The request body is not valid JSON')
      }
    })
  return corsOrigins.length > 0 ? plugin.use(cors(corsOrigins)) : plugin
}

/**
 * A form's fields by name, a file as a File; a field sent twice is refused, as JSON would keep only
 * one of two. Each step copies megabytes into fresh memory (some 15 ms for 5 MB on a small machine,
 * most of it the pages' first touch): other requests get a turn between them.
 */
async function formFields(body: Uint8Array, contentType: string): Promise<Record<string, string | File>> {
  let form: Awaited<ReturnType<Response['formData']>>
  try {
    const response = new Response(body, { headers: { 'content-type': contentType } })
    await nextTurn()
    form = await response.formData()
  } catch {
    throw badRequest('The request body is not valid multipart/form-data')
  }
  await nextTurn()
  const fields: Record<string, string | File> = Object.create(null)
  for (const [name, value] of form.entries()) {
    if (Object.hasOwn(fields, name)) throw badRequest(`The form sends ${name} more than once`)
    fields[name] = value
  }
  return fields
}

/** CORS for the listed origins ('*' for any, without credentials); installed only when some are configured. */
function cors(origins: string[]) {
  const anyOrigin = origins.includes('*')
  const allowed = new Set(origins)
  return (
    new Elysia({ name: 'cors' })
      .onRequest(({ request, set }) => {
        const origin = request.headers.get('origin')
        if (!origin || !(anyOrigin || allowed.has(origin))) return
        const headers = set.headers
        headers['access-control-allow-origin'] = anyOrigin ? '*' : origin
        headers['access-control-expose-headers'] = CORS_EXPOSED
        if (!anyOrigin) headers.vary = 'Origin'
        if (request.method === 'OPTIONS') {
          headers['access-control-allow-methods'] = CORS_METHODS
          headers['access-control-allow-headers'] = CORS_HEADERS
          headers['access-control-max-age'] = '600'
        }
      })
      // Preflights: the headers above are the answer (none for an origin that is not allowed).
      .options('*', ({ set }) => {
        set.status = 204
      })
  )
}

/**
 * Reads the body, giving up (and stopping the upload) as soon as it passes `limits.bytes`,
 * or when it has not all arrived within `limits.milliseconds`: a client trickling a byte at a time
 * would otherwise hold its request, and a graceful shutdown, for as long as it likes.
 */
async function readBody(request: Request, limits: { bytes: number; milliseconds: number }): Promise<Uint8Array> {
  if (request.body === null) return new Uint8Array()
  const reader = request.body.getReader()
  let timer: Timer | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(requestTimeout(`The body must arrive within ${limits.milliseconds / 1000} s`)), limits.milliseconds)
  })
  // A declared length (checked against the limit already) is read into one buffer: no second copy of megabytes.
  const declared = Number(request.headers.get('content-length'))
  const whole = declared > 0 ? new Uint8Array(declared) : undefined
  const chunks: Uint8Array[] = []
  let size = 0
  let sinceTurn = 0
  try {
    for (let chunk = await Promise.race([reader.read(), deadline]); !chunk.done; chunk = await Promise.race([reader.read(), deadline])) {
      if (size + chunk.value.byteLength > limits.bytes) throw payloadTooLarge(limits.bytes)
      if (whole && size + chunk.value.byteLength > whole.length) throw badRequest('The body is longer than its Content-Length')
      if (!whole) chunks.push(chunk.value)
      // Chunks already arrived resolve at once, without a turn of the event loop: one is taken every
      // BYTES_PER_TURN, a large chunk's copy split to fit.
      for (let at = 0; at < chunk.value.byteLength; ) {
        const piece = chunk.value.subarray(at, at + BYTES_PER_TURN - sinceTurn)
        whole?.set(piece, size + at)
        at += piece.byteLength
        sinceTurn += piece.byteLength
        if (sinceTurn >= BYTES_PER_TURN) {
          sinceTurn = 0
          await nextTurn()
        }
      }
      size += chunk.value.byteLength
    }
  } catch (error) {
    reader.cancel().catch(() => {})
    throw error
  } finally {
    clearTimeout(timer)
  }
  return whole ? whole.subarray(0, size) : Buffer.concat(chunks)
}

/** Bytes of a body copied between turns of the event loop (about 3 ms of copying into fresh memory). */
const BYTES_PER_TURN = 1024 * 1024

/**
 * Whether a JSON text nests arrays and objects deeper than `limit`, found in one pass over its
 * characters without parsing it (brackets inside strings do not count).
 */
export function nestsDeeperThan(text: string, limit: number): boolean {
  if (text.length <= limit) return false
  let depth = 0
  let inString = false
  for (let index = 0; index < text.length; index++) {
    const char = text.charCodeAt(index)
    if (inString) {
      if (char === BACKSLASH) index++
      else if (char === QUOTE) inString = false
    } else if (char === QUOTE) inString = true
    else if (char === OPEN_BRACKET || char === OPEN_BRACE) {
      if (++depth > limit) return true
    } else if (char === CLOSE_BRACKET || char === CLOSE_BRACE) depth--
  }
  return false
}

const QUOTE = 0x22 // "
const BACKSLASH = 0x5c
const OPEN_BRACKET = 0x5b // [
const CLOSE_BRACKET = 0x5d // ]
const OPEN_BRACE = 0x7b // {
const CLOSE_BRACE = 0x7d // }
