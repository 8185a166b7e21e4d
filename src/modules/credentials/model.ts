import { Elysia, t } from 'elysia'
import { componentId, PAIRED_SURROGATES_PATTERN } from '../../shared/model'
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

export const credentialModels = new Elysia({ name: 'models.credentials' }).use(sessionModels).model({ AuthRequest, RegisterRequest, ChangePasswordRequest })

export type RegisterRequest = typeof RegisterRequest.static
