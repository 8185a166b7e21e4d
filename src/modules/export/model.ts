import { Elysia, t } from 'elysia'
import { Message } from '../chat/model'
import { Identity } from '../credentials/model'
import { BlockedUser, DirectMessage } from '../dms/model'
import { Seat } from '../rooms/model'
import { PublicProfile, User, usersModels } from '../users/model'
import { componentId, Timestamp, Uuid } from '../../shared/model'

/** What GET /users/me/export answers: the caller's data, as one JSON document. */
export const UserExport = t.Object(
  {
    exported_at: Timestamp,
    account: t.Ref(User, { description: 'with its linked_accounts' }),
    identities: t.Array(t.Ref(Identity), { description: 'your identities at sign-in providers' }),
    rooms: t.Array(t.Ref(Seat), { description: 'every seat, in open rooms and closed' }),
    room_messages: t.Array(t.Ref(Message), { description: 'what you wrote in rooms and did not delete' }),
    conversations: t.Array(
      t.Object({
        conversation_id: Uuid,
        peer: t.Object(PublicProfile),
        messages: t.Array(t.Ref(DirectMessage), { description: "both sides', in order" }),
      }),
    ),
    blocked: t.Array(t.Ref(BlockedUser), { description: 'the users you blocked' }),
  },
  { $id: componentId('UserExport') },
)

export const exportModels = new Elysia({ name: 'models.export' }).use(usersModels).model({ Seat, Message, DirectMessage, BlockedUser, Identity, UserExport })
