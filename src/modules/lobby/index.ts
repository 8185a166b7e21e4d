import { Elysia } from 'elysia'
import type { Config } from '../../config'
import { LOBBY_CSS, LOBBY_HTML, LOBBY_JS } from './page'

/** Its own script and stylesheet only: nothing from elsewhere, nothing inline. */
const PAGE_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

const serve =
  (body: string, type: string) =>
  ({ set }: { set: { headers: Record<string, string | number> } }) => {
    // Replaces the API's own policy (frame-ancestors only), which the security plugin sets on every answer.
    Object.assign(set.headers, { 'content-type': type, 'content-security-policy': PAGE_POLICY, 'cache-control': 'no-cache' })
    return body
  }

/** GET /lobby: a small page to log in, see one's rooms and invitations, accept one, and chat, live. */
export const lobbyRoutes = ({ config }: { config: Config }) => {
  const html = LOBBY_HTML(config.apiPrefix)
  return new Elysia()
    .get('/lobby', serve(html, 'text/html; charset=utf-8'), { detail: { hide: true } })
    .get('/lobby/lobby.js', serve(LOBBY_JS, 'text/javascript; charset=utf-8'), { detail: { hide: true } })
    .get('/lobby/lobby.css', serve(LOBBY_CSS, 'text/css; charset=utf-8'), { detail: { hide: true } })
}
