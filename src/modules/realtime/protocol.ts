/**
 * The /realtime protocol's vocabulary: the close codes, one for each way a socket ends, and the
 * errors a frame may get while the socket stays open. The AsyncAPI document (asyncapi.ts) and the
 * README describe the frames.
 */
export const CLOSE = {
  serverDraining: 1001,
  frameTooBig: 1009,
  internalError: 1011,
  serverFull: 1013,
  badFrame: 4000,
  unauthorized: 4001,
  tokenExpired: 4002,
  sessionEnded: 4003,
  authTimeout: 4008,
  slowConsumer: 4009,
  rateLimited: 4029,
  tooManySockets: 4030,
} as const

export type CloseReason = keyof typeof CLOSE

/** What each close code means, for the AsyncAPI document and the README. */
export const CLOSE_MEANINGS: Record<CloseReason, string> = {
  serverDraining: 'the instance is shutting down: reconnect (to another one) and resume',
  frameTooBig: 'a frame was larger than REALTIME_MAX_FRAME_BYTES',
  internalError: 'the event log could not be read: reconnect and resume',
  serverFull: 'the instance holds REALTIME_MAX_SOCKETS already: retry later or elsewhere',
  badFrame: 'a frame was not a JSON object with a known op and valid fields',
  unauthorized: 'the access token is not valid, its session has ended, or it belongs to another user',
  tokenExpired: 'the access token expired before a fresh one was sent in an auth frame',
  sessionEnded: 'the session was revoked (logout, password change, refresh-token reuse, deactivation, deletion)',
  authTimeout: 'no auth frame within REALTIME_AUTH_TIMEOUT',
  slowConsumer: 'more than REALTIME_SLOW_CONSUMER_BYTES waited to be sent: reconnect and resume',
  rateLimited: 'more frames than REALTIME_MESSAGE_RATE per second',
  tooManySockets: "the user's sockets on this instance reached REALTIME_MAX_SOCKETS_PER_USER",
}

/** Errors answered in an `{ op: 'error' }` frame; the socket stays open. */
export const FRAME_ERRORS = {
  not_found: 'no such stream, or not one this user may follow',
  already_subscribed: 'the socket already follows that stream',
  too_many_subscriptions: 'the socket follows REALTIME_MAX_SUBSCRIPTIONS streams already',
} as const

export type FrameError = keyof typeof FRAME_ERRORS

/** Why a stream stopped being followed without the client asking. */
export type UnsubscribeReason = 'access_lost'
