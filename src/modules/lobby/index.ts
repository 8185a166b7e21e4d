import { Elysia } from 'elysia'
import type { Config } from '../../config'
import { LOBBY_CSS, LOBBY_HTML, LOBBY_JS } from './page'

/** Its own script and stylesheet only: nothing from elsewhere, nothing inline; pictures from itself, or from the avatars' bucket. */
const pagePolicy = (imageSources: string) =>
  `default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src ${imageSources}; form-action 'self'; base-uri 'none'; frame-ancestors 'none'`

/** GET /lobby: a small page to log in, see one's rooms and invitations, accept one, and chat, live. */
export const lobbyRoutes = ({ config }: { config: Config }) => {
  const html = LOBBY_HTML(config.apiPrefix)
  const storage = config.avatars.storage
  const policy = pagePolicy(["'self'", 'data:', ...(storage.kind === 's3' && storage.publicUrl ? [new URL(storage.publicUrl).origin] : [])].join(' '))
  const serve =
    (body: string, type: string) =>
    ({ set }: { set: { headers: Record<string, string | number> } }) => {
      // Replaces the API's own policy (frame-ancestors only), which the security plugin sets on every answer.
      Object.assign(set.headers, { 'content-type': type, 'content-security-policy': policy, 'cache-control': 'no-cache' })
      return body
    }
  return new Elysia()
    .get('/lobby', serve(html, 'text/html; charset=utf-8'), { detail: { hide: true } })
    .get('/lobby/lobby.js', serve(LOBBY_JS, 'text/javascript; charset=utf-8'), { detail: { hide: true } })
    .get('/lobby/lobby.css', serve(LOBBY_CSS, 'text/css; charset=utf-8'), { detail: { hide: true } })
}
