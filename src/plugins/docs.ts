import { openapi } from '@elysiajs/openapi'
import { Elysia } from 'elysia'
// Embedded in the compiled binary, so the page works with no internet access.
import swaggerBundle from 'swagger-ui-dist/swagger-ui-bundle.js' with { type: 'file' }
import swaggerCss from 'swagger-ui-dist/swagger-ui.css' with { type: 'file' }

export const DOCS_PATH = '/swagger'

export const docs = (version: string) =>
  new Elysia({ name: 'docs' })
    .get(`${DOCS_PATH}/assets/swagger-ui-bundle.js`, () => new Response(Bun.file(swaggerBundle)), { detail: { hide: true } })
    .get(`${DOCS_PATH}/assets/swagger-ui.css`, () => new Response(Bun.file(swaggerCss)), { detail: { hide: true } })
    .use(
      openapi({
        path: DOCS_PATH,
        specPath: `${DOCS_PATH}/json`,
        provider: 'swagger-ui',
        swagger: {
          cdn: `${DOCS_PATH}/assets/swagger-ui-bundle.js`,
          theme: `${DOCS_PATH}/assets/swagger-ui.css`,
          persistAuthorization: true,
        },
        documentation: {
          info: {
            title: 'Simulator Gateway',
            version,
            description:
              'Accounts, sessions, user administration and game rooms of the multiplayer industrial simulator. ' +
              'Log in, copy `access_token.token`, press Authorize.',
          },
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
