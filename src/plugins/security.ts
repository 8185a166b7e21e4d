import { Elysia } from 'elysia'
import { badRequest, payloadTooLarge, requestTimeout, unavailable, unsupportedMediaType } from '../shared/errors'

interface HttpPolicy {
  corsOrigins: string[]
  maxBodyBytes: number
  /** Seconds a client has to send the whole body. */
  bodyTimeout: number
  /** Bodies being read at once, at most: each holds up to maxBodyBytes until it is parsed or refused. */
  maxConcurrentBodies: number
  /** Whether the route takes a body; any other route never reads one. */
  takesBody: (method: string, route: string) => boolean
}

/** Our bodies nest three levels at most; anything far deeper is an attack on the parser or the validator. */
export const MAX_JSON_DEPTH = 32

const JSON_CONTENT_TYPE = /^application\/json\s*(;|$)/i
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
 * Security headers on every answer (static: set once, not per request), CORS for the configured
 * origins only, and the body rules, all checked before any parsing or validation work: JSON only
 * (415), at most `maxBodyBytes` (413, whether the size is declared or the body is chunked), sent
 * within `bodyTimeout` seconds (408), nested at most MAX_JSON_DEPTH deep (400), and no more than
 * `maxConcurrentBodies` read at once (503). A route that takes no body never reads one, so it
 * answers as if none was sent (and a caller without a token gets its 401).
 */
export const security = ({ corsOrigins, maxBodyBytes, bodyTimeout, maxConcurrentBodies, takesBody }: HttpPolicy) => {
  const limits = { bytes: maxBodyBytes, milliseconds: bodyTimeout * 1000 }
  let reading = 0
  const plugin = new Elysia({ name: 'security' })
    .headers(SECURITY_HEADERS)
    .onParse({ as: 'global' }, async ({ request, route }) => {
      if (request.body === null || request.headers.get('content-length') === '0' || !takesBody(request.method, route)) return null
      if (Number(request.headers.get('content-length')) > maxBodyBytes) throw payloadTooLarge(maxBodyBytes)
      if (!JSON_CONTENT_TYPE.test(request.headers.get('content-type') ?? '')) throw unsupportedMediaType()
      if (reading >= maxConcurrentBodies) throw unavailable('Too many request bodies are arriving at once; try again shortly', 1)
      reading++
      let text: string
      try {
        text = await readBody(request, limits)
      } finally {
        reading--
      }
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
 * Reads the body as text, giving up (and stopping the upload) as soon as it passes `limits.bytes`,
 * or when it has not all arrived within `limits.milliseconds`: a client trickling a byte at a time
 * would otherwise hold its request, and a graceful shutdown, for as long as it likes.
 */
async function readBody(request: Request, limits: { bytes: number; milliseconds: number }): Promise<string> {
  if (request.body === null) return ''
  const reader = request.body.getReader()
  let timer: Timer | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(requestTimeout(`The body must arrive within ${limits.milliseconds / 1000} s`)), limits.milliseconds)
  })
  const chunks: Uint8Array[] = []
  let size = 0
  try {
    for (let chunk = await Promise.race([reader.read(), deadline]); !chunk.done; chunk = await Promise.race([reader.read(), deadline])) {
      size += chunk.value.byteLength
      if (size > limits.bytes) throw payloadTooLarge(limits.bytes)
      chunks.push(chunk.value)
    }
  } catch (error) {
    reader.cancel().catch(() => {})
    throw error
  } finally {
    clearTimeout(timer)
  }
  return Buffer.concat(chunks).toString('utf8')
}

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
