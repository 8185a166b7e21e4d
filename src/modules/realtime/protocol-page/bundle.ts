/**
 * A macro (imported `with { type: 'macro' }`): runs when the server's source is transpiled, and
 * when the binary is compiled, never at request time. Builds the AsyncAPI page's script and its
 * parsed document through ./build.ts, in a process of its own.
 */
export function asyncApiPageAssets(): { script: string; document: string } {
  const build = Bun.spawnSync([process.execPath, new URL('./build.ts', import.meta.url).pathname], { stderr: 'pipe' })
  if (build.exitCode !== 0) throw new Error(`building the AsyncAPI page failed:\n${build.stderr}`)
  return JSON.parse(build.stdout.toString())
}
