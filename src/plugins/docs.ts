import { openapi } from '@elysiajs/openapi'
import { SwaggerUIRender } from '@elysiajs/openapi/swagger'
import { FormatRegistry } from '@sinclair/typebox'
import { Elysia } from 'elysia'
// Embedded in the compiled binary, so the page works with no internet access.
import swaggerBundle from 'swagger-ui-dist/swagger-ui-bundle.js' with { type: 'file' }
import swaggerCss from 'swagger-ui-dist/swagger-ui.css' with { type: 'file' }

export const DOCS_PATH = '/swagger'

// Importing @elysiajs/openapi replaces TypeBox's global `uuid` format check with one that builds a
// new Zod schema on every call: half the CPU of a list response went there (bench/RESULTS.md).
// Elysia's own check is this regular expression; put it back.
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
FormatRegistry.Set('uuid', (value) => UUID.test(value))
// And date-time as JSON Schema means it (RFC 3339), in one expression: Elysia's own check tries
// several date spellings and parses each value with Date. Only responses carry date-times here.
const DATE_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/i
FormatRegistry.Set('date-time', (value) => DATE_TIME.test(value))

const INFO = {
  title: 'Simulator Gateway',
  version: '',
  description:
    'Accounts, sessions, user administration and game rooms of the multiplayer industrial simulator. ' +
    'Log in, copy `access_token.token`, press Authorize.',
}

/**
 * The OpenAPI document at /swagger/json and the Swagger UI page at /swagger, rendered here rather
 * than by the plugin so that the page can do without the framing headers every other answer has,
 * and its assets (from the binary itself, no CDN) can be cached.
 */
export const docs = (version: string) => {
  const page = SwaggerUIRender(INFO, {
    url: `${DOCS_PATH}/json`,
    dom_id: '#swagger-ui',
    cdn: `${DOCS_PATH}/assets/swagger-ui-bundle.js`,
    theme: `${DOCS_PATH}/assets/swagger-ui.css`,
    autoDarkMode: true,
    persistAuthorization: true,
  } as Parameters<typeof SwaggerUIRender>[1])
  const asset = (path: string, type: string) => () =>
    new Response(Bun.file(path), { headers: { 'content-type': type, 'cache-control': 'public, max-age=86400' } })

  return new Elysia({ name: 'docs' })
    .onAfterHandle(({ set }) => {
      delete set.headers['x-frame-options']
      delete set.headers['content-security-policy']
    })
    .get(DOCS_PATH, () => new Response(page, { headers: { 'content-type': 'text/html; charset=utf-8' } }), { detail: { hide: true } })
    .get(`${DOCS_PATH}/assets/swagger-ui-bundle.js`, asset(swaggerBundle, 'text/javascript; charset=utf-8'), { detail: { hide: true } })
    .get(`${DOCS_PATH}/assets/swagger-ui.css`, asset(swaggerCss, 'text/css; charset=utf-8'), { detail: { hide: true } })
    .use(
      openapi({
        path: DOCS_PATH,
        specPath: `${DOCS_PATH}/json`,
        provider: null,
        documentation: {
          info: { ...INFO, version },
          tags: [
            { name: 'auth', description: 'Registration, login, token refresh and sessions' },
            { name: 'users', description: 'Your profile; user administration (admins)' },
            { name: 'rooms', description: 'Game rooms: create, invite, join, kick, leave, close' },
            { name: 'invites', description: 'Invitations you received or sent' },
            { name: 'ops', description: 'Health and readiness probes' },
          ],
          components: {
            securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
          },
        },
      }),
    )
}
