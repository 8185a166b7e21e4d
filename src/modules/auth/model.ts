import { Elysia, t } from 'elysia'
import { Timestamp } from '../../shared/model'
import { Password, User, Username, usersModels } from '../users/model'

export const AuthRequest = t.Object({ username: Username, password: Password }, { additionalProperties: false })

export const Token = t.Object({
  token: t.String(),
  token_type: t.Union([t.Literal('bearer'), t.Literal('refresh')]),
  expires_in: t.Integer({ description: 'seconds until the token expires' }),
})

export const TokenResponse = t.Object({
  success: t.Boolean(),
  message: t.String(),
  timestamp: Timestamp,
  access_token: Token,
  refresh_token: Token,
  user: User,
})

export const RefreshTokenRequest = t.Object(
  {
    refresh_token: t.Union([t.String({ minLength: 1, maxLength: 512 }), Token], {
      description: 'the refresh Token object exactly as login returned it, or its bare token string',
    }),
  },
  { additionalProperties: false },
)

export const ChangePasswordRequest = t.Object(
  { current_password: t.String({ minLength: 1, maxLength: 128 }), new_password: Password },
  { additionalProperties: false },
)

export type Token = typeof Token.static

export const authModels = new Elysia({ name: 'models.auth' })
  .use(usersModels)
  .model({ AuthRequest, Token, TokenResponse, RefreshTokenRequest, ChangePasswordRequest })
