import { Elysia, type ValidationError } from 'elysia'
import type { Logger } from '../lib/logger'
import { ApiError, badRequest, errorEnvelope, internalError, invalidInput, notFound } from '../shared/errors'
import { PATTERN_MEANINGS } from '../shared/model'

const BEARER_CHALLENGE = 'Bearer realm="sim-gateway"'

/** Every non-2xx answer leaves through here, in the SPEC's envelope, with nothing internal in it. */
export const errorHandler = (log: Logger) =>
  new Elysia({ name: 'error-handler' }).onError({ as: 'global' }, ({ code, error, set, request, route }) => {
    const failure = toApiError(code, error)
    if (failure.status >= 500)
      log.error('request failed', { request_id: set.headers['x-request-id'], method: request.method, route, error: describe(error) })
    set.status = failure.status
    if (failure.headers) Object.assign(set.headers, failure.headers)
    // RFC 6750: a refused bearer token says so; a request that sent none gets the bare challenge.
    if (failure.code === 'unauthorized' && !failure.headers?.['WWW-Authenticate'])
      set.headers['www-authenticate'] = request.headers.has('authorization') ? `${BEARER_CHALLENGE}, error="invalid_token"` : BEARER_CHALLENGE
    return errorEnvelope(failure)
  })

/** What Elysia's own errors mean in the vocabulary. */
function toApiError(code: string | number, error: unknown): ApiError {
  if (error instanceof ApiError) return error
  // Elysia wraps whatever a parse hook throws (such as our 413) in its own ParseError.
  if (code === 'PARSE' && (error as Error).cause instanceof ApiError) return (error as Error).cause as ApiError
  switch (code) {
    case 'VALIDATION':
      return fromValidation(error as ValidationError)
    case 'PARSE':
      return badRequest('The request body is not valid JSON')
    case 'NOT_FOUND':
      return notFound('No such route')
    case 'INVALID_COOKIE_SIGNATURE':
    case 'INVALID_FILE_TYPE':
      return badRequest('The request is malformed')
    default:
      return internalError()
  }
}

function fromValidation(error: ValidationError): ApiError {
  if (error.type === 'response') return internalError()
  if (error.type === 'params') return badRequest('The id in the path is not a valid id')
  return invalidInput(
    error.type,
    error.all.map((issue) => ({ field: issue.path || '/', message: expectationOf(issue) })),
  )
}

/**
 * What a field must be, in words a client developer can act on. Never the value that was sent:
 * Elysia's own summaries quote it, which a hostile body turns into an echo or a cost.
 */
function expectationOf(issue: { message: string; schema?: { error?: unknown; pattern?: string; anyOf?: Array<{ const?: unknown }> } }): string {
  const schema = issue.schema ?? {}
  if (typeof schema.error === 'string') return schema.error
  const meaning = schema.pattern === undefined ? undefined : PATTERN_MEANINGS[schema.pattern]
  if (meaning !== undefined && issue.message.startsWith('Expected string to match')) return meaning
  if (schema.anyOf?.every((option) => option.const !== undefined))
    return `must be one of ${schema.anyOf.map((option) => JSON.stringify(option.const)).join(', ')}`
  return issue.message
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error)
}
