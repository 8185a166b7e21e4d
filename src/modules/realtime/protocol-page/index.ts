import { Elysia } from 'elysia'
// Embedded in the compiled binary, so the page works with no internet access.
import componentCss from '@asyncapi/react-component/styles/default.min.css' with { type: 'file' }
import { pageFile } from '../../../plugins/security'
import { asyncApiDocument } from '../asyncapi'
import pageHtml from './page.html' with { type: 'text' }

const ASYNCAPI_PATH = '/asyncapi'

/** Its own script and stylesheets only, nothing inline but the document (data, not a script); it makes no requests. */
const PAGE_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self' data:; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"

/**
 * GET /asyncapi/json: the realtime protocol and the domain events as an AsyncAPI 3 document (../asyncapi.ts); GET /asyncapi:
 * the same for people (served when SWAGGER_ENABLED, beside the Swagger page): the AsyncAPI
 * project's React component, bundled with the document it shows when the service is built
 * (./build.ts says why); the service puts its API prefix and exchange into it. Running from source, that happens on the page's first request, which
 * takes about a second; the compiled binary carries both.
 */
export const protocolPageRoutes = (options: { version: string; apiPrefix: string; exchange: string }) => {
  const asyncApi = asyncApiDocument(options)
  let page: Promise<{ html: string; script: string }> | undefined
  const built = () =>
    (page ??= import('./assets').then(({ assets }) => {
      const parsed = JSON.parse(assets.document)
      parsed.channels.realtime.address = asyncApi.channels.realtime.address
      parsed.channels.domainEvents.address = asyncApi.channels.domainEvents.address
      parsed.channels.domainEvents.bindings.amqp.exchange.name = asyncApi.channels.domainEvents.address
      // JSON in a script element: only `</script>` could end it early, and `<` never appears unescaped.
      const inline = JSON.stringify(parsed).replaceAll('<', '\\u003c')
      // Bun's types take an .html import for a bundle to serve; imported as text, it is its text.
      return { html: (pageHtml as unknown as string).replace('PARSED_DOCUMENT', () => inline), script: assets.script }
    }))
  const serve = pageFile(PAGE_POLICY)
  const hidden = { detail: { hide: true } }

  return new Elysia()
    .get(`${ASYNCAPI_PATH}/json`, () => asyncApi, hidden)
    .get(ASYNCAPI_PATH, serve('text/html; charset=utf-8', 'no-cache', async () => (await built()).html), hidden)
    .get(`${ASYNCAPI_PATH}/assets/asyncapi.js`, serve('text/javascript; charset=utf-8', 'public, max-age=86400', async () => (await built()).script), hidden)
    .get(`${ASYNCAPI_PATH}/assets/asyncapi.css`, serve('text/css; charset=utf-8', 'public, max-age=86400', () => Bun.file(componentCss)), hidden)
}
