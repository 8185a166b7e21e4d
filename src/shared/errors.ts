/**
 * The error vocabulary of SPEC part 1 (its envelope schema is ErrorResponse in ./model.ts): every code, and the one status each answers with. Code
 * below the routes throws these (through the named constructors); the error plugin turns them,
 * and whatever Elysia or Bun throws, into the envelope.
 */
const STATUS_OF = {
  bad_request: 400,
  // RFC 8628's answers to a device that polls (here: a desktop waiting for a QR login's approval).
  authorization_pending: 400,
  slow_down: 400,
  access_denied: 400,
  expired_token: 400,
  unauthorized: 401,
  invalid_proof: 401,
  invalid_credentials: 401,
  invalid_refresh_token: 401,
  refresh_token_reused: 401,
  forbidden: 403,
  account_inactive: 403,
  account_deleted: 403,
  not_found: 404,
  request_timeout: 408,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  validation_error: 422,
  rate_limited: 429,
  internal_error: 500,
  // A sign-in provider (OAUTH_PROVIDERS) did not answer, or answered nonsense.
  bad_gateway: 502,
  unavailable: 503,
} as const

export type ErrorCode = keyof typeof STATUS_OF

/**
 * What exactly a 403 or a 409 refused, in the envelope's `reason`, so that a client can act on it
 * without reading the message; `error` stays the status's code (supabase/auth keeps its codes
 * apart from the status the same way).
 */
export const REASONS = {
  admin_only: 'the route or the field is for admins',
  not_room_manager: "only the room's owner or an admin may do this (revoking: also the inviter)",
  not_a_player: "only the room's players may do this",
  not_author: 'only the author may do this (deleting: also the owner or an admin)',
  not_invitee: 'the invitation is for somebody else, or for another room',
  blocked_by_peer: 'the other user blocked you',
  username_taken: 'another account has this name',
  email_taken: 'another account has this email address',
  reactivated_during_deletion: 'another admin restored or reactivated the account while it was being deleted or erased; do it again',
  user_deleted: 'the account is deleted; restore it first',
  not_deleted: 'only a deleted account can be restored',
  erasure_under_way: 'the account is being erased; it cannot come back',
  already_linked: 'an account on that network is linked already; unlink it first',
  link_taken: 'that account of the network is linked to another user',
  last_way_in: 'the only way left to log in to the account: link another, or keep it',
  upload_under_way: 'another avatar upload for the account is under way; wait for it to finish',
  self_target: 'not to yourself: an admin deleting, deactivating or demoting themself, an owner kicking themself, writing to or blocking yourself',
  last_admin: 'the last active admin stays',
  quota_reached: 'a per-user or per-room limit is reached: open rooms, seats, pending invitations, blocks',
  room_closed: 'the room is closed',
  receiver_unavailable: 'no active user has that name',
  already_in_room: 'the user already plays in the room',
  already_invited: 'the user already has a pending invitation to the room',
  invitation_settled: 'the invitation was already accepted, declined, revoked or expired',
  invitation_expired: 'the invitation has expired',
  room_full: 'the room has max_players players',
  message_deleted: 'the message was deleted',
  edit_limit: 'the message was edited as often as allowed; write a new one',
  peer_blocked: 'you blocked this user; unblock them first',
} as const

export type Reason = keyof typeof REASONS

export interface FieldError {
  /** A JSON pointer into the input, such as /password. */
  field: string
  message: string
}

export class ApiError extends Error {
  readonly status: number

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: FieldError[],
    readonly headers?: Record<string, string>,
    readonly reason?: Reason,
  ) {
    super(message)
    this.status = STATUS_OF[code]
  }
}

const retryAfter = (seconds: number) => ({ 'Retry-After': String(Math.max(1, Math.ceil(seconds))) })

export const badRequest = (message: string) => new ApiError('bad_request', message)
export const unauthorized = (message: string, headers?: Record<string, string>) => new ApiError('unauthorized', message, undefined, headers)
export const invalidCredentials = (message: string) => new ApiError('invalid_credentials', message)
export const invalidRefreshToken = (message: string) => new ApiError('invalid_refresh_token', message)
export const refreshTokenReused = (message: string) => new ApiError('refresh_token_reused', message)
export const forbidden = (reason: Reason, message: string) => new ApiError('forbidden', message, undefined, undefined, reason)
export const accountInactive = () => new ApiError('account_inactive', 'This account is deactivated')
export const accountDeleted = () => new ApiError('account_deleted', 'This account is deleted; an admin can restore it')
export const notFound = (message: string) => new ApiError('not_found', message)
export const requestTimeout = (message: string) => new ApiError('request_timeout', message)
export const conflict = (reason: Reason, message: string) => new ApiError('conflict', message, undefined, undefined, reason)
export const payloadTooLarge = (maxBytes: number) => new ApiError('payload_too_large', `The body must not exceed ${maxBytes} bytes`)
export const unsupportedMediaType = (message = 'Send the body as application/json') => new ApiError('unsupported_media_type', message)
/** A 422 for one field, in the shape schema validation gives. */
export const invalidField = (field: string, message: string) => new ApiError('validation_error', 'Invalid body', [{ field, message }])
export const invalidInput = (what: string, details: FieldError[]) => new ApiError('validation_error', `Invalid ${what}`, details)
export const rateLimited = (message: string, retryAfterSeconds: number) => new ApiError('rate_limited', message, undefined, retryAfter(retryAfterSeconds))
export const unavailable = (message: string, retryAfterSeconds?: number) =>
  new ApiError('unavailable', message, undefined, retryAfterSeconds === undefined ? undefined : retryAfter(retryAfterSeconds))
export const authorizationPending = () => new ApiError('authorization_pending', 'Not decided yet on the phone; ask again')
export const slowDown = (intervalSeconds: number) =>
  new ApiError('slow_down', `Ask at most once every ${intervalSeconds} s, one request at a time`, undefined, retryAfter(intervalSeconds))
export const accessDenied = (message: string) => new ApiError('access_denied', message)
export const expiredToken = (message: string) => new ApiError('expired_token', message)
export const invalidProof = () => new ApiError('invalid_proof', 'The signature does not match the key the request was started with')
export const badGateway = (message: string) => new ApiError('bad_gateway', message)
export const internalError = () => new ApiError('internal_error', 'Something went wrong on our side')

export function errorEnvelope(error: ApiError) {
  return {
    success: false as const,
    message: error.message,
    timestamp: new Date().toISOString(),
    error: error.code,
    ...(error.reason && { reason: error.reason }),
    ...(error.details && { details: error.details }),
  }
}
