// Files imported `with { type: 'file' }` resolve to a path Bun.file() can open (inside the binary once compiled).
declare module 'swagger-ui-dist/*' {
  const path: string
  export default path
}

declare module '*.css' {
  const path: string
  export default path
}

declare module '*/swagger.js' {
  const path: string
  export default path
}

declare module '*/sqlite-reader.js' {
  const path: string
  export default path
}
