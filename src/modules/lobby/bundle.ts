/**
 * A macro (imported `with { type: 'macro' }`): runs when the server's source is transpiled, and
 * when the binary is compiled, never at request time. It bundles the lobby page's script, which is
 * the client package's own example (client/lobby/main.ts), for browsers, and hands it over as a
 * string. Through the CLI: Bun.build cannot run inside a macro while the bundler waits for it.
 */
export function lobbyScript(): string {
  const entry = new URL('../../../client/lobby/main.ts', import.meta.url).pathname
  const build = Bun.spawnSync([process.execPath, 'build', entry, '--target=browser', '--format=esm', '--minify'], { stderr: 'pipe' })
  if (build.exitCode !== 0) throw new Error(`bundling the lobby page failed:\n${build.stderr}`)
  return build.stdout.toString()
}
