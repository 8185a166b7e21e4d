import { Elysia } from 'elysia'
import { DOCS_PATH } from './docs'
import { ApiError } from './errors'

interface HttpPolicy {
  corsOrigins: string[]
  maxBodyBytes: number
}

const METHODS_WITH_BODY = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])
const CORS_METHODS = 'GET, POST, PUT, DELETE, OPTIONS'
const CORS_HEADERS = 'Authorization, Content-Type, X-Request-Id'
const CORS_EXPOSED = 'X-Request-Id, X-User-Id, X-User-Role, Retry-After'

/** Response headers every answer carries, CORS for the configured origins, and the body rules (413, 415). */
export const security = ({ corsOrigins, maxBodyBytes }: HttpPolicy) => {
  const anyOrigin = corsOrigins.includes('*')
  const allowedOrigins = new Set(corsOrigins)

  return new Elysia({ name: 'security' }).onRequest(({ request, set }) => {
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
        return new Response(null, { status: 204, headers: headers as Record<string, string> })
      }
    }

    if (!METHODS_WITH_BODY.has(request.method)) return
    const length = Number(request.headers.get('content-length') ?? 0)
    if (length > maxBodyBytes) throw new ApiError(413, 'payload_too_large', `The body must not exceed ${maxBodyBytes} bytes`)
    const hasBody = length > 0 || request.headers.has('transfer-encoding')
    const contentType = request.headers.get('content-type') ?? ''
    if (hasBody && !/^application\/([\w.+-]+\+)?json\s*(;|$)/i.test(contentType))
      throw new ApiError(415, 'unsupported_media_type', 'Send the body as application/json')
  })
}

function pathOf(url: string): string {
  const start = url.indexOf('/', url.indexOf('//') + 2)
  const query = url.indexOf('?', start)
  return query === -1 ? url.slice(start) : url.slice(start, query)
}
