import { Elysia, ValidationError } from 'elysia'
import type { Logger } from '../lib/logger'
import { PATTERN_MEANINGS } from '../shared/model'

export type ErrorCode =
  | 'bad_request'
  | 'unauthorized'
  | 'invalid_credentials'
  | 'invalid_refresh_token'
  | 'refresh_token_reused'
  | 'forbidden'
  | 'account_inactive'
  | 'not_found'
  | 'conflict'
  | 'request_timeout'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'validation_error'
  | 'rate_limited'
  | 'internal_error'
  | 'unavailable'

export interface FieldError {
  field: string
  message: string
}

/** Thrown anywhere below the routes; the error handler turns it into the envelope. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly details?: FieldError[],
    readonly headers?: Record<string, string>,
  ) {
    super(message)
  }
}

export function errorEnvelope(code: ErrorCode, message: string, details?: FieldError[]) {
  return { success: false as const, message, timestamp: new Date().toISOString(), error: code, ...(details && { details }) }
}

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
    return errorEnvelope(failure.code, failure.message, failure.details)
  })

function toApiError(code: string | number, error: unknown): ApiError {
  if (error instanceof ApiError) return error
  // Elysia wraps whatever a parse hook throws (such as our 413) in its own ParseError.
  if (code === 'PARSE' && (error as Error).cause instanceof ApiError) return (error as Error).cause as ApiError
  switch (code) {
    case 'VALIDATION':
      return fromValidation(error as ValidationError)
    case 'PARSE':
      return new ApiError(400, 'bad_request', 'The request body is not valid JSON')
    case 'NOT_FOUND':
      return new ApiError(404, 'not_found', 'No such route')
    case 'INVALID_COOKIE_SIGNATURE':
    case 'INVALID_FILE_TYPE':
      return new ApiError(400, 'bad_request', 'The request is malformed')
    default:
      return new ApiError(500, 'internal_error', 'Something went wrong on our side')
  }
}

function fromValidation(error: ValidationError): ApiError {
  if (error.type === 'response') return new ApiError(500, 'internal_error', 'Something went wrong on our side')
  if (error.type === 'params') return new ApiError(400, 'bad_request', 'The id in the path is not a valid id')
  const details = error.all.map((issue) => ({ field: issue.path || '/', message: expectationOf(issue) }))
  return new ApiError(422, 'validation_error', `Invalid ${error.type}`, details)
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
