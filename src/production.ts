// Elysia decides when it loads whether a validation error pretty-prints the rejected value: slow,
// and unbounded for a hostile body. The service never shows that text, so it always runs as
// production, whatever the environment says. Imported before anything that imports Elysia.
Bun.env.NODE_ENV = 'production'
