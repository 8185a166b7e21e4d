import { Elysia, t } from 'elysia'
import { Count, componentId, ListResponse, PAIRED_SURROGATES_PATTERN, Timestamp, Uuid } from '../../shared/model'
import { sessionModels } from '../sessions/model'
import { NewUsername, Password, ProfileChanges, Username } from '../users/model'

export const AuthRequest = t.Object(
  { username: Username, password: Password },
  { additionalProperties: false, $id: componentId('AuthRequest') },
)

/** Registration: a name and a password, and, when the client has them, the profile's fields. */
export const RegisterRequest = t.Object(
  { username: NewUsername, password: Password, ...ProfileChanges },
  { additionalProperties: false, $id: componentId('RegisterRequest') },
)

export const ChangePasswordRequest = t.Object(
  {
    current_password: t.String({ minLength: 1, maxLength: 128, pattern: PAIRED_SURROGATES_PATTERN, examples: ['demo-password'] }),
    new_password: Password,
  },
  { additionalProperties: false, $id: componentId('ChangePasswordRequest') },
)

const Base64Url = (description: string, length: number, example: string) =>
  t.String({ pattern: '^[A-Za-z0-9_-]+$', minLength: length, maxLength: length, description, examples: [example] })

const VerificationWords = (description: string) =>
  t.Array(t.String(), { minItems: 4, maxItems: 4, description, examples: [['maple', 'lotus', 'cobalt', 'heron']] })

/** RFC 7517's example P-256 public key (A.1): a real point on the curve, for examples and tests. */
export const EXAMPLE_P256_KEY = { kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' } as const

/** The public half of a P-256 key pair (ECDSA or ECDH), as WebCrypto exports it (`crypto.subtle.exportKey('jwk', publicKey)`). */
export const PublicKeyJwk = t.Object(
  {
    kty: t.Literal('EC'),
    crv: t.Literal('P-256'),
    x: Base64Url('the point’s x coordinate', 43, EXAMPLE_P256_KEY.x),
    y: Base64Url('the point’s y coordinate', 43, EXAMPLE_P256_KEY.y),
  },
  // WebCrypto adds key_ops and ext to what it exports; they are ignored.
  { additionalProperties: true, $id: componentId('PublicKeyJwk') },
)

export const QrLoginStartRequest = t.Object(
  {
    // Two key pairs, as WebCrypto keeps signing and key agreement apart: the exchange is signed with the first, its answer sealed to the second.
    public_key: PublicKeyJwk,
    encryption_key: PublicKeyJwk,
  },
  { additionalProperties: false, $id: componentId('QrLoginStartRequest') },
)

/** The exchange's answer: a TokenResponse only the desktop's ECDH private key opens (credentials/sealed.ts). */
export const QrSealedTokens = t.Object(
  {
    alg: t.Literal('ECDH-ES+HKDF-SHA256+A256GCM', {
      description:
        'ECDH of `epk` and encryption_key; HKDF-SHA-256 with the request id as salt and, as info, "sim-gateway qr-login tokens", epk.x, epk.y, encryption_key.x and encryption_key.y joined by "."; AES-256-GCM (UTF-8 texts)',
    }),
    epk: PublicKeyJwk,
    iv: Base64Url('the AES-GCM nonce (12 bytes)', 16, 'rIQ1oEH9cFJdQ6gS'),
    ciphertext: t.String({
      pattern: '^[A-Za-z0-9_-]+$',
      description: 'the TokenResponse as JSON, encrypted, its 16-byte tag at the end (base64url); additional data: the request id',
      examples: ['cGxlYXNlIG9wZW4gbWUgd2l0aCB5b3VyIGtleQ'],
    }),
  },
  { $id: componentId('QrSealedTokens') },
)

export const QrLoginStarted = t.Object(
  {
    request_id: t.String({ format: 'uuid', description: 'what the desktop exchanges (POST /auth/qr/token); keep it to yourself' }),
    code: t.String({ description: 'the one-time code the QR carries (in `link`); the phone approves it' }),
    link: t.String({ description: 'what the QR encodes: the lobby page, with the code in its fragment (never sent to a server)' }),
    qr_svg: t.String({ description: 'the QR of `link` as an SVG document, ready for an <img> (as a data: URL) or inline' }),
    verification_words: VerificationWords('show them: the phone shows the same four for this desktop'),
    expires_in: Count('seconds the request can be approved and exchanged (QR_LOGIN_TTL)'),
    interval: Count('seconds to wait between two exchanges while it is pending (QR_LOGIN_INTERVAL)'),
  },
  { $id: componentId('QrLoginStarted') },
)

export const QrCode = t.Object(
  { code: t.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$', description: 'the code from the QR’s link', examples: ['q9mJ2x0TqV1cYd4hWm5bKg'] }) },
  { additionalProperties: false, $id: componentId('QrCode') },
)

export const QrLoginRequest = t.Object(
  {
    address: t.String({ description: 'the client address the desktop asked from' }),
    device: t.String({ description: 'its browser and system, as its User-Agent claims ("Chrome 131 on Windows")' }),
    user_agent: t.String({ description: 'the User-Agent itself (anyone can write any)' }),
    created_at: t.String({ format: 'date-time' }),
    expires_at: t.String({ format: 'date-time' }),
    verification_words: VerificationWords('the desktop shows the same four'),
  },
  { $id: componentId('QrLoginRequest') },
)

export const QrTokenRequest = t.Object(
  {
    request_id: Uuid,
    signature: Base64Url(
      'ECDSA P-256 with SHA-256 over the text `qr-login:<request_id>` by the private key of the request, as WebCrypto makes it (64 bytes)',
      86,
      'ZIx2pc-M9FGbSD0e23_UQa_GuSMxo7gOGc7-yfNnvMhxflEg8ynakLRyjPCQyhJ5mxGG_6oX9105BopM8ER9Dw',
    ),
  },
  { additionalProperties: false, $id: componentId('QrTokenRequest') },
)

export const OAuthProvider = t.Object(
  {
    id: t.String({ description: 'in the routes: /auth/oauth/{provider}/...', examples: ['yandex'] }),
    name: t.String({ description: 'for the login button', examples: ['Yandex ID'] }),
  },
  { $id: componentId('OAuthProvider') },
)
export const OAuthProvidersResponse = ListResponse('OAuthProvidersResponse', 'providers', OAuthProvider)

export const ProviderParams = t.Object({ provider: t.String({ pattern: '^[a-z0-9-]{1,32}$', description: 'a provider of OAUTH_PROVIDERS', examples: ['yandex'] }) })
export const IdentityParams = t.Object({
  identity_id: t.String({ format: 'uuid', description: 'from GET /auth/identities (the demo data has none: no sign-in provider is configured by default)' }),
})

export const OAuthStarted = t.Object(
  {
    authorize_url: t.String({ description: 'send the browser there' }),
    state: t.String({ description: 'keep it in the page (sessionStorage) and check it against the one the browser comes back with' }),
    flow_secret: t.String({ description: 'keep it in the page too, never in a URL: the callback needs it with the code and state' }),
  },
  { $id: componentId('OAuthStarted') },
)

export const OAuthCallback = t.Object(
  {
    state: t.String({ minLength: 1, maxLength: 128, description: 'the `state` the provider sent the browser back with', examples: ['kq3v0iXoX2k9Q3mB5a8sT1ZpRr4yL6uN0cW7eH2fJ9g'] }),
    flow_secret: t.String({ minLength: 1, maxLength: 128, description: 'the `flow_secret` the start answered to this page', examples: ['Xb1m9Qe0hT4kZ7yR2pW5sV8nC3dF6gJ0aL1uO4iE7tY'] }),
    code: t.Optional(t.String({ minLength: 1, maxLength: 2048, description: 'the `code` it came back with', examples: ['4f1c9e0a7b3d'] })),
    error: t.Optional(t.String({ minLength: 1, maxLength: 256, description: 'or the `error` it came back with (access_denied when the person said no)' })),
  },
  { additionalProperties: false, $id: componentId('OAuthCallback') },
)

export const Identity = t.Object(
  {
    identity_id: Uuid,
    provider: t.String({ examples: ['yandex'] }),
    subject: t.String({ description: 'the account’s id at the provider' }),
    email: t.Union([t.String(), t.Null()], { description: 'its address there, as the provider told it (never used to find an account)' }),
    login: t.Union([t.String(), t.Null()], { description: 'its login there' }),
    created_at: Timestamp,
    last_sign_in_at: Timestamp,
  },
  { $id: componentId('Identity') },
)
export const IdentitiesResponse = ListResponse('IdentitiesResponse', 'identities', Identity)

export const credentialModels = new Elysia({ name: 'models.credentials' })
  .use(sessionModels)
  .model({ AuthRequest, RegisterRequest, ChangePasswordRequest, PublicKeyJwk, QrLoginStartRequest, QrLoginStarted, QrCode, QrLoginRequest, QrTokenRequest, QrSealedTokens })
  .model({ OAuthProvider, OAuthProvidersResponse, OAuthStarted, OAuthCallback, Identity, IdentitiesResponse })

export type RegisterRequest = typeof RegisterRequest.static
export type PublicKeyJwk = typeof PublicKeyJwk.static
export type QrLoginStarted = typeof QrLoginStarted.static
export type QrSealedTokens = typeof QrSealedTokens.static
export type QrLoginStartRequest = typeof QrLoginStartRequest.static
export type QrLoginRequest = typeof QrLoginRequest.static
