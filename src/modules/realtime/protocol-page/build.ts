/**
 * Run by ./bundle.ts when the service is transpiled or compiled (Bun.build cannot run inside a
 * macro): prints, as JSON, the page's script bundled for browsers and the AsyncAPI document as
 * @asyncapi/parser parses and stringifies it.
 *
 * The React component parses documents in the browser with @asyncapi/parser, which validates through
 * Spectral and ajv, and ajv compiles validators with `new Function`: under the page's policy
 * (script-src 'self', no 'unsafe-eval') that throws before anything renders. So the document is parsed
 * here instead, and the page takes only the parser's document models, which are plain classes: the
 * plugin below narrows the component's imports of `@asyncapi/parser` to them.
 */
import { dirname, join } from 'node:path'
import { Parser, stringify } from '@asyncapi/parser'
import packageJson from '../../../../package.json'
import { EnvSchema } from '../../../config'
import { asyncApiDocument } from '../asyncapi'

const PARSED_AT_BUILD = "throw new Error('the document is parsed when the service is built')"

const parserModelsOnly: Bun.BunPlugin = {
  name: 'asyncapi-parser-models-only',
  setup(build) {
    build.onResolve({ filter: /^@asyncapi\/parser(\/cjs\/document)?$/ }, (args) => ({ path: dirname(args.importer), namespace: 'parser-models' }))
    build.onLoad({ filter: /.*/, namespace: 'parser-models' }, ({ path: folder }) => {
      const module = (file: string) => JSON.stringify(Bun.resolveSync(`@asyncapi/parser/esm/${file}`, folder))
      return {
        loader: 'js',
        contents: [
          `export { isAsyncAPIDocument, isOldAsyncAPIDocument, isStringifiedDocument, toAsyncAPIDocument } from ${module('document.js')}`,
          `export { unstringify } from ${module('stringify.js')}`,
          `export { Schema as SchemaV2 } from ${module('models/v2/schema.js')}`,
          `export class Parser { constructor() { ${PARSED_AT_BUILD} } }`,
          `export function fromURL() { ${PARSED_AT_BUILD} }`,
        ].join('\n'),
      }
    })
    // The models name Spectral's Document for one constant; Spectral's index would bring its rule engine, and ajv.
    build.onResolve({ filter: /^@stoplight\/spectral-core$/ }, (args) => ({
      path: join(dirname(Bun.resolveSync('@stoplight/spectral-core', args.importer)), 'document.js'),
    }))
    // Required from CommonJS, jsonc-parser would be its UMD build, whose requires a bundle cannot follow.
    build.onResolve({ filter: /^jsonc-parser$/ }, (args) => ({
      path: join(dirname(Bun.resolveSync('jsonc-parser/package.json', args.importer)), 'lib/esm/main.js'),
    }))
  },
}

async function pageScript(): Promise<string> {
  const build = await Bun.build({
    entrypoints: [new URL('./page.ts', import.meta.url).pathname],
    target: 'browser',
    format: 'iife',
    minify: true,
    plugins: [parserModelsOnly],
    define: { 'process.env.NODE_ENV': '"production"' },
  })
  const [script] = build.outputs
  if (!build.success || !script) throw new AggregateError(build.logs, 'bundling the AsyncAPI page failed')
  return script.text()
}

/** With no API prefix: the service puts its own into the channel's address when it serves the page. */
async function parsedDocument(): Promise<string> {
  const { document, diagnostics } = await new Parser().parse(asyncApiDocument({ version: packageJson.version, apiPrefix: '', exchange: EnvSchema.properties.AMQP_EXCHANGE.default }))
  if (!document) throw new Error(`the AsyncAPI document does not parse:\n${JSON.stringify(diagnostics, null, 2)}`)
  return stringify(document) as string
}

const [script, document] = await Promise.all([pageScript(), parsedDocument()])
process.stdout.write(JSON.stringify({ script, document }))
