import { Elysia, t } from 'elysia'
import { DEMO_IDS } from '../../shared/demo'
import { componentId, DemoId } from '../../shared/model'
import { usersModels } from '../users/model'

export const AvatarUpload = t.Object(
  {
    avatar_file: t.File({
      description:
        'a PNG, JPEG or WebP picture, told apart by its content (a name or declared type may only agree with it), at most AVATAR_MAX_BYTES and AVATAR_MAX_DIMENSION pixels a side; stored re-encoded as WebP without metadata',
    }),
  },
  { additionalProperties: false, $id: componentId('AvatarUpload') },
)

export const AvatarParams = t.Object({
  user_id: DemoId(DEMO_IDS.users.alice),
  file: t.String({
    pattern: '^[0-9a-f]{64}-[0-9a-f]{16}\\.webp$',
    description: '<sha256 of the stored picture>-<nonce of its upload>.webp',
    examples: ['9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08-3f2a9c01d4e5b6a7.webp'],
  }),
})

export const avatarsModels = new Elysia({ name: 'models.avatars' }).use(usersModels).model({ AvatarUpload })
