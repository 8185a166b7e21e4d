/**
 * Compiles the service into one self-contained executable.
 *   bun run build                                  → dist/sim-gateway for this machine
 *   bun scripts/build.ts --target bun-linux-arm64 --outfile /out/sim-gateway
 * Never add --minify or --minify-identifiers: Elysia reads handler source to decide what to parse,
 * and renamed identifiers make requests without an Authorization header answer 500.
 */
import { parseArgs } from 'node:util'

const { values } = parseArgs({
  options: {
    target: { type: 'string', default: 'bun' },
    outfile: { type: 'string', default: 'dist/sim-gateway' },
  },
})

const command = [
  process.execPath,
  'build',
  'src/index.ts',
  '--compile',
  `--target=${values.target}`,
  `--outfile=${values.outfile}`,
  '--minify-whitespace',
  '--minify-syntax',
  // Precompiled bytecode halves start-up time; it needs ESM because of top-level await.
  '--bytecode',
  '--format=esm',
  '--sourcemap=linked',
  // bun build would otherwise inline NODE_ENV as "development".
  '--define',
  'process.env.NODE_ENV="production"',
  // The binary reads its settings from its environment only, not from files where it is started.
  '--no-compile-autoload-dotenv',
  '--no-compile-autoload-bunfig',
]

const build = Bun.spawnSync(command, { stdout: 'inherit', stderr: 'inherit' })
process.exit(build.exitCode ?? 1)
