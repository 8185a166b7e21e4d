import { Elysia } from 'elysia'
import { DOCS_PATH } from './docs'
import { ApiError } from './errors'

interface HttpPolicy {
  corsOrigins: string[]
  maxBodyBytes: number
}

const METHODS_WITH_BODY = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])
const JSON_CONTENT_TYPE = /^application\/json\s*(;|$)/i
const CORS_METHODS = 'GET, POST, PUT, DELETE, OPTIONS'
const CORS_HEADERS = 'Authorization, Content-Type, X-Request-Id'
const CORS_EXPOSED = 'X-Request-Id, X-User-Id, X-User-Role, Retry-After'

/**
 * Response headers every answer carries, CORS for the configured origins, and the body rules:
 * JSON only (415), at most `maxBodyBytes` (413, whether the size is declared or the body is chunked).
 */
export const security = ({ corsOrigins, maxBodyBytes }: HttpPolicy) => {
  const anyOrigin = corsOrigins.includes('*')
  const allowedOrigins = new Set(corsOrigins)
  const tooLarge = () => new ApiError(413, 'payload_too_large', `The body must not exceed ${maxBodyBytes} bytes`)

  return new Elysia({ name: 'security' })
    .onRequest(({ request, set }) => {
    const headers = set.headers
    headers['x-content-type-options'] = 'nosniff'
    headers['referrer-policy'] = 'no-referrer'
    if (!pathOf(request.url).startsWith(DOCS_PATH)) {
      // The Swagger page runs its own scripts and may be framed by an operator's portal.
      headers['x-frame-options'] = 'DENY'
      headers['content-security-policy'] = "frame-ancestors 'none'"
      headers['cache-control'] = 'no-store'
    }

    const origin = request.headers.get('origin')
    if (origin && (anyOrigin || allowedOrigins.has(origin))) {
      headers['access-control-allow-origin'] = anyOrigin ? '*' : origin
      headers['access-control-expose-headers'] = CORS_EXPOSED
      if (!anyOrigin) headers.vary = 'Origin'
      if (request.method === 'OPTIONS') {
        headers['access-control-allow-methods'] = CORS_METHODS
        headers['access-control-allow-headers'] = CORS_HEADERS
        headers['access-control-max-age'] = '600'
      }
    }

    if (!METHODS_WITH_BODY.has(request.method) || request.body === null) return
    const declaredLength = request.headers.get('content-length')
    if (declaredLength === '0') return
    if (Number(declaredLength) > maxBodyBytes) throw tooLarge()
    if (!JSON_CONTENT_TYPE.test(request.headers.get('content-type') ?? ''))
      throw new ApiError(415, 'unsupported_media_type', 'Send the body as application/json')
  })
    // Preflights: the CORS headers above are the answer (none for an origin that is not allowed).
    .options('*', ({ set }) => {
      set.status = 204
    })
    .onParse({ as: 'global' }, async ({ request }) => {
      const text = await readAtMost(request, maxBodyBytes, tooLarge)
      if (text.trim() === '') return null
      try {
        return JSON.parse(text)
      } catch {
        throw new ApiError(400, 'bad_request', 'The request body is not valid JSON')
      }
    })
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

function pathOf(url: string): string {
  const start = url.indexOf('/', url.indexOf('//') + 2)
  const query = url.indexOf('?', start)
  return query === -1 ? url.slice(start) : url.slice(start, query)
}
