import { Elysia, t } from 'elysia'
import { Count, componentId, Timestamp } from '../../shared/model'
import { Password, User, Username, usersModels } from '../users/model'

export const AuthRequest = t.Object(
  { username: Username, password: Password },
  { additionalProperties: false, $id: componentId('AuthRequest') },
)

export const Token = t.Object(
  {
    token: t.String(),
    token_type: t.Union([t.Literal('bearer'), t.Literal('refresh')]),
    expires_in: Count('seconds until the token expires'),
  },
  { $id: componentId('Token') },
)

export const TokenResponse = t.Object(
  {
    success: t.Boolean(),
    message: t.String(),
    timestamp: Timestamp,
    access_token: t.Ref(Token),
    refresh_token: t.Ref(Token),
    user: t.Ref(User),
  },
  { $id: componentId('TokenResponse') },
)

const RefreshTokenString = t.String({ minLength: 1, maxLength: 512 })

export const RefreshTokenRequest = t.Object(
  {
    // Inline rather than t.Ref(Token): Elysia's body validator cannot resolve a $ref inside a union.
    refresh_token: t.Union(
      [
        RefreshTokenString,
        t.Object({ token: RefreshTokenString, token_type: t.Literal('refresh'), expires_in: Count() }, { additionalProperties: false }),
      ],
      { description: 'the refresh Token object exactly as login returned it, or its bare token string' },
    ),
  },
  { additionalProperties: false, $id: componentId('RefreshTokenRequest') },
)

export const ChangePasswordRequest = t.Object(
  { current_password: t.String({ minLength: 1, maxLength: 128 }), new_password: Password },
  { additionalProperties: false, $id: componentId('ChangePasswordRequest') },
)

export type Token = typeof Token.static

export const authModels = new Elysia({ name: 'models.auth' })
  .use(usersModels)
  .model({ AuthRequest, Token, TokenResponse, RefreshTokenRequest, ChangePasswordRequest })
