import { Elysia } from 'elysia'
import type { Config } from '../../config'
import { pageFile } from '../../plugins/security'
import pageCss from '../../../client/lobby/lobby.css' with { type: 'text' }
import pageHtml from '../../../client/lobby/lobby.html' with { type: 'text' }
import { lobbyScript } from './bundle' with { type: 'macro' }

/** Bundled when the source is transpiled or the binary compiled (./bundle.ts): no build step at start-up, nothing from elsewhere. */
const LOBBY_JS = lobbyScript()

/** Its own script and stylesheet only: nothing from elsewhere, nothing inline; pictures from itself, or from the avatars' bucket. */
const pagePolicy = (imageSources: string) =>
  `default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src ${imageSources}; form-action 'self'; base-uri 'none'; frame-ancestors 'none'`

/**
 * GET /lobby: the lobby page (client/lobby/), a small web client of the lobby built on the client
 * package: rooms, invitations and chat, live, losing nothing across drops.
 */
export const lobbyRoutes = ({ config }: { config: Config }) => {
  // Bun's types take an .html import for a bundle to serve; imported as text, it is its text.
  const html = (pageHtml as unknown as string)
    .replace('data-api=""', `data-api="${config.apiPrefix}"`)
    // Its links to the API's documents, where the service serves them.
    .replace(/<footer id="docs">[\s\S]*?<\/footer>\n/, (footer) => (config.swaggerEnabled ? footer : ''))
  const storage = config.avatars.storage
  const policy = pagePolicy(["'self'", 'data:', ...(storage.kind === 's3' && storage.publicUrl ? [new URL(storage.publicUrl).origin] : [])].join(' '))
  const file = pageFile(policy)
  const serve = (body: string, type: string) => file(type, 'no-cache', () => body)
  return new Elysia()
    .get('/lobby', serve(html, 'text/html; charset=utf-8'), { detail: { hide: true } })
    .get('/lobby/lobby.js', serve(LOBBY_JS, 'text/javascript; charset=utf-8'), { detail: { hide: true } })
    .get('/lobby/lobby.css', serve(pageCss, 'text/css; charset=utf-8'), { detail: { hide: true } })
}
