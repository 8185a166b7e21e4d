import { Elysia } from 'elysia'
import type { Config } from '../../config'
import type { RateLimit } from '../../plugins/rate-limit'
import { answers, errors, listAnswer, success } from '../../shared/model'
import { type AccessJwt, tokenResponse } from '../sessions/tokens'
import type { UserGuard } from '../users/model'
import { credentialModels, IdentityParams, ProviderParams } from './model'
import type { OAuthSignIn } from './oauth'

/** A whole list as a list answer: a user's identities and the providers are a handful each, never paged. */
const listed = <Key extends string, Item>(key: Key, items: Item[]) => listAnswer(key, items, items.length)

const NO_SUCH_PROVIDER = '`not_found`: no provider of OAUTH_PROVIDERS has this id.'
const CALLBACK_REFUSALS = {
  400:
    '`bad_request`: the state is unknown, used, expired, not with its flow_secret, or was started for something else. ' +
    '`access_denied`: the person said no at the provider (the callback brought `error`).',
  422: '`validation_error`: a field is missing or outside its limits, or the provider refused the code (used, expired, or not from this sign-in).',
  401: '`unauthorized`: the provider issued the token to another application.',
  502: '`bad_gateway`: the provider did not answer in OAUTH_TIMEOUT, or answered nonsense; nothing was created.',
}

/**
 * Signing in with providers (oauth.ts): the page starts a sign-in, sends the browser to the
 * provider, and hands what the browser came back with to the callback, which answers a session
 * (or, for a user who is logged in, links the identity). Tokens never travel in a URL.
 */
export const oauthRoutes = ({ credentials, signer, config }: { credentials: { oauth: OAuthSignIn }; signer: AccessJwt; config: Config }, guard: UserGuard, authLimit: RateLimit) => {
  const { oauth } = credentials
  return new Elysia({ prefix: '/auth', detail: { tags: ['auth'] } })
    .use(guard)
    .use(authLimit)
    .use(credentialModels)
    .get('/oauth/providers', () => listed('providers', oauth.list()), {
      response: { 200: 'OAuthProvidersResponse' },
      detail: { summary: 'The providers one can sign in with', description: 'Those of OAUTH_PROVIDERS: a login button for each.' },
    })
    .post('/oauth/:provider/start', ({ params }) => oauth.start(params.provider), {
      rateLimited: true,
      params: ProviderParams,
      response: { 200: 'OAuthStarted', ...errors(404, 429) },
      detail: {
        summary: 'Start signing in with a provider',
        description:
          'Keep `state` in the page and send the browser to `authorize_url` (the authorization code flow with PKCE S256: the service keeps the verifier). ' +
          'The provider sends it back to the redirect_uri of OAUTH_PROVIDERS with `code` and `state` in the query: check the state, then POST both to the callback.',
        responses: answers({ 404: NO_SUCH_PROVIDER }),
      },
    })
    .post(
      '/oauth/:provider/callback',
      async ({ params, body, set }) => {
        const grant = await oauth.logIn(params.provider, body)
        if (grant.registered) set.status = 201
        return tokenResponse(signer, config.accessTokenTtl, grant.registered ? 'Registered' : 'Logged in', grant)
      },
      {
        rateLimited: true,
        params: ProviderParams,
        body: 'OAuthCallback',
        parse: 'json',
        response: { 200: 'TokenResponse', 201: 'TokenResponse', ...errors(400, 401, 403, 404, 413, 415, 422, 429, 502) },
        detail: {
          summary: 'Finish signing in with a provider: a session (201 with a new account at the first sign-in)',
          description:
            'The first sign-in with an account of the provider registers a user (named after its login where free, with no password) and links the identity; ' +
            'later ones log in. An account is never found by its email address. The state is spent, whatever the answer.',
          responses: answers({
            ...CALLBACK_REFUSALS,
            403: '`account_inactive`, `account_deleted`: the identity’s account cannot log in.',
            404: NO_SUCH_PROVIDER,
          }),
        },
      },
    )
    .post('/oauth/:provider/link', ({ params, user }) => oauth.start(params.provider, user), {
      auth: 'user',
      rateLimited: true,
      params: ProviderParams,
      response: { 200: 'OAuthStarted', ...errors(401, 403, 404, 429) },
      detail: {
        summary: 'Start linking your account with a provider',
        description: 'As POST /auth/oauth/{provider}/start, then POST what the browser came back with to /auth/oauth/{provider}/link/callback.',
        responses: answers({ 404: NO_SUCH_PROVIDER }),
      },
    })
    .post(
      '/oauth/:provider/link/callback',
      ({ params, body, user, sessionId, set }) => {
        set.status = 201
        return oauth.link(params.provider, body, user, sessionId)
      },
      {
        auth: 'user',
        rateLimited: true,
        params: ProviderParams,
        body: 'OAuthCallback',
        parse: 'json',
        response: { 201: 'Identity', ...errors(400, 401, 403, 404, 409, 413, 415, 422, 429, 502) },
        detail: {
          summary: 'Finish linking your account with a provider',
          description: 'Once linked, signing in with that account of the provider logs in to yours. The state must be one you started with /link.',
          responses: answers({
            ...CALLBACK_REFUSALS,
            404: NO_SUCH_PROVIDER,
            409: '`conflict`: an account of this provider is linked already (`already_linked`), or that account signs in to another user (`link_taken`).',
          }),
        },
      },
    )
    .get('/identities', async ({ user }) => listed('identities', await oauth.identities(user)), {
      auth: 'user',
      response: { 200: 'IdentitiesResponse', ...errors(401, 403) },
      detail: { summary: 'Your identities at sign-in providers', description: 'One per provider, in the order they were linked.' },
    })
    .delete(
      '/identities/:identity_id',
      async ({ params, user }) => {
        await oauth.unlink(user, params.identity_id)
        return success('Unlinked')
      },
      {
        auth: 'user',
        params: IdentityParams,
        response: { 200: 'SuccessResponse', ...errors(400, 401, 403, 404, 409, 422) },
        detail: {
          summary: 'Unlink an identity',
          description: 'Never the last way in: an account made by a provider’s sign-in has no password, and keeps at least one identity.',
          responses: answers({
            404: '`not_found`: no such identity on your account.',
            409: '`conflict`: it is the account’s only way to log in (`last_way_in`).',
          }),
        },
      },
    )
}
