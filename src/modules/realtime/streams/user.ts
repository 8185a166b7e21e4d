import { roomStream, userStream } from '../../events/model'
import type { StreamKind } from './kind'

/**
 * A user's own stream: their invitations, sessions and account, and their direct messages. Only
 * they follow it (as `user` or `user:<their id>`); its events end sessions and rights elsewhere.
 */
export const userStreams = (): StreamKind => ({
  owns: (stream, userId) => stream === userStream(userId),

  right: async () => ({ right: 'owner' }),

  react({ stream, event }, hub) {
    const userId = stream.slice('user:'.length)
    switch (event.type) {
      case 'session_revoked':
        return hub.endSession(userId, event.session_id, event.reason)
      case 'account_changed': {
        if (!event.fields.includes('user_role') && !event.fields.includes('is_active')) return
        hub.rightsChanged(userId)
        // What they followed only as an admin goes; told on this stream, it ends after what was handed out of each.
        for (const other of [...hub.streamsOf(userId)])
          if (other !== stream) hub.withdraw(userId, other, (right) => right !== 'admin', hub.head(other))
        return
      }
      case 'invitation_revoked':
      case 'invitation_declined': {
        // Only the room's stream: an invitee never follows its chat.
        const room = roomStream(event.room_id)
        return hub.withdraw(userId, room, (right) => right !== 'invitee', hub.head(room))
      }
    }
  },
})
