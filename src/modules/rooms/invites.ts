import { Elysia } from 'elysia'
import type { UserGuard } from '../users/model'
import { answers, errors, listAnswer, success } from '../../shared/model'
import { type Invitation, InviteIdParams, invitesModels } from './invitation-model'
import type { InvitationService } from './invitation-service'

const invitationPage = ({ invitations, total }: { invitations: Invitation[]; total: number }) => listAnswer('invitations', invitations, total)

export const invitesRoutes = ({ invites }: { invites: InvitationService }, guard: UserGuard) =>
  new Elysia({ prefix: '/invites', detail: { tags: ['invites'] } })
    .use(guard)
    .use(invitesModels)
    .get('/my', async ({ user, query }) => invitationPage(await invites.listReceived(user, query)), {
      auth: 'user',
      query: 'GetMyInvitesRequest',
      response: { 200: 'GetMyInvitesResponse', ...errors(401, 403, 422) },
      detail: {
        summary: 'Invitations you received, newest first',
        description: 'Each carries its `ct` for POST /rooms/{room_id}/join. A pending invitation past its expiry reads as `expired`.',
      },
    })
    .get('/sent', async ({ user, query }) => invitationPage(await invites.listSent(user, query)), {
      auth: 'user',
      query: 'GetMyInvitesRequest',
      response: { 200: 'GetMyInvitesResponse', ...errors(401, 403, 422) },
      detail: { summary: 'Invitations you sent, newest first', description: 'The same filters as GET /invites/my.' },
    })
    .guard({ params: InviteIdParams }, (byId) =>
      byId
        .post('/:invite_id/decline', ({ user, params }) => invites.decline(user, params.invite_id), {
          auth: 'user',
          response: { 200: 'Invitation', ...errors(400, 401, 403, 404, 409) },
          detail: {
            summary: 'Decline an invitation you received',
            description: 'Its ct no longer opens the room.',
            responses: answers({
              403: '`forbidden`: only the invited user may decline.',
              409: '`conflict`: the invitation is no longer pending.',
            }),
          },
        })
        .delete(
          '/:invite_id',
          async ({ user, params }) => {
            await invites.revoke(user, params.invite_id)
            return success('Invitation revoked')
          },
          {
            auth: 'user',
            response: { 200: 'SuccessResponse', ...errors(400, 401, 403, 404, 409) },
            detail: {
              summary: 'Revoke a pending invitation (its inviter, the room owner or an admin)',
              description: 'The invitation is deleted; its ct no longer opens the room.',
              responses: answers({
                403: '`forbidden`: only the inviter, the room owner or an admin may revoke; the invitee declines instead.',
                409: '`conflict`: the invitation is no longer pending.',
              }),
            },
          },
        ),
    )
