import type { Server } from 'bun'
import { Elysia } from 'elysia'
import type { Config } from '../../config'
import { clientAddress, publicOrigin } from '../../lib/client-address'
import type { RateLimit } from '../../plugins/rate-limit'
import { answers, errors, success } from '../../shared/model'
import type { UserGuard } from '../users/model'
import { type AccessJwt, tokenResponse } from '../sessions/tokens'
import { credentialModels } from './model'
import type { QrLogin } from './qr'

const ASK_AGAIN = '`authorization_pending`: not decided yet (after waiting up to QR_LOGIN_WAIT); ask again. '

const PHONE_REFUSALS = answers({
  404: '`not_found`: no request is waiting under this code (decided, expired, or never existed).',
  429: '`rate_limited`: more than QR_APPROVAL_RATE_LIMIT looks and decisions per USER_RATE_WINDOW.',
})

/** What the phone's approval and denial have alike: a logged-in user, and the code. */
const decision = (summary: string, description: string) =>
  ({
    auth: 'user',
    body: 'QrCode',
    parse: 'json',
    response: { 200: 'SuccessResponse', ...errors(400, 401, 403, 404, 413, 415, 422, 429) },
    detail: { summary, description, responses: PHONE_REFUSALS },
  }) as const

/**
 * Logging a desktop in with a phone (qr.ts): the desktop starts a request and exchanges it; the
 * phone, logged in, looks at it and approves or denies it.
 */
export const qrLoginRoutes = ({ credentials, signer, config }: { credentials: { qr: QrLogin }; signer: AccessJwt; config: Config }, guard: UserGuard, authLimit: RateLimit) => {
  const address = (request: Request, server: Server<unknown> | null) => clientAddress(request, server, config.trustProxy)
  const { qr } = credentials
  return new Elysia({ prefix: '/auth/qr', detail: { tags: ['auth'] } })
    .use(guard)
    .use(authLimit)
    .use(credentialModels)
    .post(
      '',
      async ({ body, request, server, set }) => {
        set.status = 201
        const origin = { address: address(request, server), userAgent: request.headers.get('user-agent') ?? '' }
        return qr.start(body, origin, `${publicOrigin(request, config.trustProxy)}/lobby`)
      },
      {
        rateLimited: true,
        body: 'QrLoginStartRequest',
        parse: 'json',
        response: { 201: 'QrLoginStarted', ...errors(400, 413, 415, 422, 429) },
        detail: {
          summary: 'Desktop: start a QR login',
          description:
            'Make two P-256 key pairs whose private halves cannot be exported: one to sign with (`crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign"])`), ' +
            'one to open the answer with (`{ name: "ECDH", namedCurve: "P-256" }, false, ["deriveBits"]`), and send their public halves. ' +
            'Show `qr_svg` and `verification_words`, then call POST /auth/qr/token until it answers a session. ' +
            'The QR carries only a one-time code: the session goes to whoever holds the private keys.',
          responses: answers({
            422: '`validation_error`: public_key or encryption_key is not a P-256 public key.',
            429: '`rate_limited`: more than QR_LOGIN_RATE_LIMIT requests from this address per USER_RATE_WINDOW, or more than AUTH_RATE_LIMIT auth requests.',
          }),
        },
      },
    )
    .post(
      '/token',
      ({ body, request }) => qr.exchange(body.request_id, body.signature, (grant) => tokenResponse(signer, config.accessTokenTtl, 'Logged in', grant), request.signal),
      {
        rateLimited: true,
        body: 'QrTokenRequest',
        parse: 'json',
        response: { 200: 'QrSealedTokens', ...errors(400, 401, 413, 415, 422, 429) },
        detail: {
          summary: 'Desktop: exchange an approved QR login for a session',
          description:
            'Sign the text `qr-login:<request_id>` with the private key (`crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, privateKey, text)`, base64url). ' +
            'While the phone has not decided, the call waits up to QR_LOGIN_WAIT seconds and answers as soon as it does, on any instance; ' +
            'then `authorization_pending`. Once approved, exactly one exchange gets the session (of the user who approved), and the ' +
            "user's other devices hear `device_logged_in` on their user stream. The answers follow RFC 8628. " +
            'The TokenResponse comes sealed to the encryption key (ECDH-ES with `epk`, HKDF-SHA-256, AES-256-GCM; client/src/sealed.ts opens it), ' +
            'so that a copy of the exchange or of its answer, in a log or a proxy, logs nobody in.',
          responses: answers({
            400:
              ASK_AGAIN +
              '`slow_down`: another exchange of this request is waiting, or the last was less than QR_LOGIN_INTERVAL ago. ' +
              '`access_denied`: denied on the phone, or the approving account can no longer log in. `expired_token`: expired, exchanged already, or unknown: start again.',
            401: '`invalid_proof`: the signature is not by the key the request was started with.',
          }),
        },
      },
    )
    .post('/inspect', ({ user, body }) => qr.inspect(user, body.code), {
      auth: 'user',
      body: 'QrCode',
      parse: 'json',
      response: { 200: 'QrLoginRequest', ...errors(400, 401, 403, 404, 413, 415, 422, 429) },
      detail: {
        summary: 'Phone: see where a QR login request comes from',
        description:
          'Show it before asking to approve: the address, the device, the time, and the four words the desktop shows. ' +
          'Approve only a desktop in front of you: a code someone sent you, or showed you on a page, logs *them* in as you.',
        responses: PHONE_REFUSALS,
      },
    })
    .post(
      '/approve',
      async ({ user, sessionId, body }) => {
        await qr.decide(user, sessionId, body.code, true)
        return success('Approved: the desktop is logging in')
      },
      decision(
        'Phone: approve a QR login request (logs the desktop in as you)',
        'The desktop waiting on the request gets a session of your account at once, and your devices hear `device_logged_in`. ' +
          'Approve only after POST /auth/qr/inspect showed a computer in front of you, with the words it shows.',
      ),
    )
    .post(
      '/deny',
      async ({ user, sessionId, body }) => {
        await qr.decide(user, sessionId, body.code, false)
        return success('Denied')
      },
      decision('Phone: deny a QR login request', 'The desktop waiting on the request hears `access_denied`; the code is spent.'),
    )
}
