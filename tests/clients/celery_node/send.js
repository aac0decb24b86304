// Sends wasmq jobs from Node.js with celery-node, as a foreign producer would, and prints what it read back:
// one JSON line per job: {"name", "status", "result"} or {"name", "status": "FAILURE", "error": {...}}.
// Usage: node send.js REDIS_URL QUEUE
const celery = require("celery-node");

const [url, queue] = process.argv.slice(2);
const client = celery.createClient(url, url, queue);
const jobs = [
  ["greet", "wasmq.call", ["greeting", "greet", "Zoë from Node", null]],
  ["many", "wasmq.call_many", ["greeting", "greet", ["Ada", "José"], null]],
  ["trap", "wasmq.call", ["trap", "greet", "x", null]],
  ["unknown-module", "wasmq.call", ["no-such-module", "greet", "x", null]],
  ["wrong-type", "wasmq.call", ["greeting", "greet", 42, null]],
];

async function main() {
  for (const [name, task, args] of jobs) {
    const result = client.createTask(task).applyAsync(args);
    let line;
    try {
      line = { name, status: "SUCCESS", result: await result.get(60000, 50) };
    } catch (error) {  // celery-node rejects a failed job with an Error carrying the stored result's fields
      line = { name, status: error.message, error: { ...error } };
    }
    console.log(JSON.stringify(line));
  }
  await client.disconnect();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
