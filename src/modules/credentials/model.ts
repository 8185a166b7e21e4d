import { Elysia, t } from 'elysia'
import { componentId, PAIRED_SURROGATES_PATTERN } from '../../shared/model'
import { sessionModels } from '../sessions/model'
import { Password, Username } from '../users/model'

export const AuthRequest = t.Object(
  { username: Username, password: Password },
  { additionalProperties: false, $id: componentId('AuthRequest') },
)

export const ChangePasswordRequest = t.Object(
  {
    current_password: t.String({ minLength: 1, maxLength: 128, pattern: PAIRED_SURROGATES_PATTERN, examples: ['demo-password'] }),
    new_password: Password,
  },
  { additionalProperties: false, $id: componentId('ChangePasswordRequest') },
)

export const credentialModels = new Elysia({ name: 'models.credentials' }).use(sessionModels).model({ AuthRequest, ChangePasswordRequest })
