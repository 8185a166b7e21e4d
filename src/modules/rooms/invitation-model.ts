import { Elysia, t } from 'elysia'
import { DEMO_IDS } from '../../shared/demo'
import { componentId, DemoId, ListResponse, Pagination, QueryBoolean, sharedModels, Text, Timestamp, Uuid } from '../../shared/model'

export const InvitationStatus = t.Union([t.Literal('pending'), t.Literal('accepted'), t.Literal('declined'), t.Literal('expired')])

export const Invitation = t.Object(
  {
    invite_id: Uuid,
    inviter_id: Uuid,
    room_id: Uuid,
    receiver_id: Uuid,
    player_role: t.String(),
    is_accepted: t.Boolean(),
    status: InvitationStatus,
    created_at: Timestamp,
    updated_at: Timestamp,
    expires_at: Timestamp,
    ct: t.Union([t.String(), t.Null()], { description: 'the single-use join token; shown only to the receiver and the inviter' }),
  },
  { $id: componentId('Invitation') },
)

export const GetMyInvitesRequest = t.Object(
  {
    inviter_id: t.Optional(Uuid),
    player_role: t.Optional(Text({ maxLength: 64 }, '/player_role')),
    is_accepted: t.Optional(QueryBoolean),
    status: t.Optional(InvitationStatus),
    ...Pagination,
  },
  { additionalProperties: false, $id: componentId('GetMyInvitesRequest') },
)

export const GetMyInvitesResponse = ListResponse('GetMyInvitesResponse', 'invitations', Invitation)

export const InviteIdParams = t.Object({ invite_id: DemoId(DEMO_IDS.invitation) })

export type Invitation = typeof Invitation.static
export type InvitationStatus = typeof InvitationStatus.static
export type InviteFilter = typeof GetMyInvitesRequest.static

export const invitesModels = new Elysia({ name: 'models.invites' })
  .use(sharedModels)
  .model({ Invitation, GetMyInvitesRequest, GetMyInvitesResponse })
