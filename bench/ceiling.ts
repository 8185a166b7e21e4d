// The ceiling: what a bare Bun.serve answering a small JSON object does on this machine right now.
Bun.serve({ port: Number(Bun.env.PORT ?? 4400), hostname: '127.0.0.1', fetch: () => Response.json({ status: 'ok' }) })
