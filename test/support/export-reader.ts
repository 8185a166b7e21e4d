// A user downloading their export in a process of its own, at the lowest priority, so that reading
// and parsing tens of megabytes is not what slows the test's measurements on a two-core machine:
// `nice -n 19 bun test/support/export-reader.ts <baseUrl> <token>` prints the status, and how many
// room messages and messages of the first conversation the export holds.

const [baseUrl, token] = process.argv.slice(2) as [string, string]
async function read() {
  const reply = await fetch(`${baseUrl}/users/me/export`, { headers: { authorization: `Bearer ${token}` } })
  const data = (await reply.json()) as { room_messages: unknown[]; conversations: Array<{ messages: unknown[] }> }
  console.log(JSON.stringify({ status: reply.status, room_messages: data.room_messages.length, conversation_messages: data.conversations[0]?.messages.length }))
}

void read()
