import { Elysia } from 'elysia'
import { ApiError } from './errors'

interface HttpPolicy {
  corsOrigins: string[]
  maxBodyBytes: number
}

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
 * origins only, and the body rules: JSON only (415), at most `maxBodyBytes` (413, whether the size
 * is declared or the body is chunked). The body rules run where bodies are parsed, so requests
 * without one pay nothing for them.
 */
export const security = ({ corsOrigins, maxBodyBytes }: HttpPolicy) => {
  const tooLarge = () => new ApiError(413, 'payload_too_large', `The body must not exceed ${maxBodyBytes} bytes`)
  const plugin = new Elysia({ name: 'security' })
    .headers(SECURITY_HEADERS)
    .onParse({ as: 'global' }, async ({ request }) => {
      if (request.body === null || request.headers.get('content-length') === '0') return null
      if (Number(request.headers.get('content-length')) > maxBodyBytes) throw tooLarge()
      if (!JSON_CONTENT_TYPE.test(request.headers.get('content-type') ?? ''))
        throw new ApiError(415, 'unsupported_media_type', 'Send the body as application/json')
      const text = await readAtMost(request, maxBodyBytes, tooLarge)
      if (text.trim() === '') return null
      try {
        return JSON.parse(text)
      } catch {
        throw new ApiError(400, 'bad_request', 'The request body is not valid JSON')
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

/** Reads the body as text, giving up (and stopping the upload) as soon as it passes `limit` bytes. */
async function readAtMost(request: Request, limit: number, tooLarge: () => Error): Promise<string> {
  if (request.body === null) return ''
  const reader = request.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
    size += chunk.value.byteLength
    if (size > limit) {
      await reader.cancel()
      throw tooLarge()
    }
    chunks.push(chunk.value)
  }
  return Buffer.concat(chunks).toString('utf8')
}
