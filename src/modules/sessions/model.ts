import { Elysia, t } from 'elysia'
import { Count, componentId, Timestamp } from '../../shared/model'
import { User, usersModels } from '../users/model'

const TokenText = (description: string, example: string) => t.String({ description, examples: [example] })

/** The Token model of the SPEC, once for each kind, so that a client passes the refresh one on as it came. */
export const AccessToken = t.Object(
  {
    token: TokenText('a JWT: send it as Authorization: Bearer <token>', 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIuLi4ifQ.c2lnbmF0dXJl'),
    token_type: t.Literal('bearer'),
    expires_in: Count('seconds until the token expires'),
  },
  { $id: componentId('AccessToken') },
)

export const RefreshToken = t.Object(
  {
    token: TokenText('an opaque token for POST /auth/refresh, spent when used', 'q2W9xN7v3kTq8cYbPz1LmA4sR6dF0hJe5uGiOwXyZtU'),
    token_type: t.Literal('refresh'),
    expires_in: Count('seconds until the token expires'),
  },
  { $id: componentId('RefreshToken') },
)

export const TokenResponse = t.Object(
  {
    success: t.Boolean(),
    message: t.String({ examples: ['Logged in'] }),
    timestamp: Timestamp,
    access_token: t.Ref(AccessToken),
    refresh_token: t.Ref(RefreshToken),
    user: t.Ref(User),
  },
  { $id: componentId('TokenResponse') },
)

const RefreshTokenString = t.String({ minLength: 1, maxLength: 512, examples: ['q2W9xN7v3kTq8cYbPz1LmA4sR6dF0hJe5uGiOwXyZtU'] })

export const RefreshTokenRequest = t.Object(
  {
    // Inline rather than t.Ref(RefreshToken): Elysia's body validator cannot resolve a $ref inside a union.
    refresh_token: t.Union(
      [
        RefreshTokenString,
        t.Object({ token: RefreshTokenString, token_type: t.Literal('refresh'), expires_in: Count() }, { additionalProperties: false }),
      ],
      { description: 'the refresh_token object exactly as login returned it, or its bare token string' },
    ),
  },
  { additionalProperties: false, $id: componentId('RefreshTokenRequest') },
)

export const sessionModels = new Elysia({ name: 'models.sessions' }).use(usersModels).model({ AccessToken, RefreshToken, TokenResponse, RefreshTokenRequest })
