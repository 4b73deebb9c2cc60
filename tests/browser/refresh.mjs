// What one refresh of each page asks of the server, repeated: for latency.sh, which reads
// PostgreSQL's statistics before and after to tell the database's work per refresh.
const base = process.env.CONSOLE_URL;
const path = process.argv[2];
const n = Number(process.argv[3] || 200);
for (let i = 0; i < n; i++) {
  const r = await fetch(new URL(path, base));
  if (!r.ok) throw new Error(`${path}: ${r.status}`);
  await r.arrayBuffer();
}
