// A consumer group member in plain Node (20+): no dependencies, only the global fetch.
//
//   OFFLOAD_SERVER=http://127.0.0.1:8750 OFFLOAD_TOKEN=... OFFLOAD_TOPIC=orders \
//   OFFLOAD_GROUP=js-analytics node consumer.mjs
//
// It asks POST /topics/{topic}/groups/{group}/fetch for a batch: the server hands it one
// partition of the group, under a lease, with the events from the group's offset on. It handles
// them in offset order and commits with POST …/commit, naming the lease and the offset it read
// from; the partition then goes back to the group, for whichever member fetches next. A member
// that dies loses its lease, and the batch is fetched again (at-least-once). Run as many
// members as you like: each partition is held by one at a time.

const env = process.env;
const config = {
  server: (env.OFFLOAD_SERVER || "http://127.0.0.1:8750").replace(/\/+$/, ""),
  token: env.OFFLOAD_TOKEN || "",
  topic: env.OFFLOAD_TOPIC || "orders",
  group: env.OFFLOAD_GROUP || "js-consumer",
  batch: Number(env.OFFLOAD_BATCH || 100),
  leaseSeconds: Number(env.OFFLOAD_LEASE || 30),
  idle: Number(env.OFFLOAD_IDLE_MS || 500), // wait after an empty fetch
  maxEvents: Number(env.OFFLOAD_MAX_EVENTS || 0), // stop after this many (0: run until stopped)
  worker: env.OFFLOAD_WORKER_ID || `node-consumer:${process.pid}`,
};

const log = (...args) => console.error(new Date().toISOString(), "[offload-consumer]", ...args);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// --- your code: called with each event, in offset order within its partition ----------------
async function handle(event) {
  // e.g. update a projection; here, print "partition:offset payload" on stdout
  console.log(`${event.partition}:${event.offset} ${JSON.stringify(event.payload)}`);
}

// --- HTTP ----------------------------------------------------------------------------------
async function post(path, body) {
  const url = `${config.server}/topics/${encodeURIComponent(config.topic)}/groups/${encodeURIComponent(config.group)}/${path}`;
  for (let delay = 250; ; delay = Math.min(delay * 2, 5000)) {
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          ...(config.token ? { Authorization: `Bearer ${config.token}` } : {}),
        },
        body: JSON.stringify(body),
      });
    } catch (err) {
      log(`POST ${path} failed (${err.cause?.code || err.message}); retrying`);
      await sleep(delay);
      continue;
    }
    if (response.status === 503) {
      await sleep(1000 * Number(response.headers.get("retry-after") || 1));
      continue;
    }
    const text = await response.text();
    return { status: response.status, data: text ? JSON.parse(text) : null };
  }
}

// --- the loop --------------------------------------------------------------------------------
let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => (stopping = true));

let handled = 0;
while (!stopping && !(config.maxEvents && handled >= config.maxEvents)) {
  const fetched = await post("fetch", {
    worker: config.worker,
    max: config.batch,
    lease_seconds: config.leaseSeconds,
  });
  if (fetched.status === 204) {
    await sleep(config.idle);
    continue;
  }
  if (fetched.status !== 200) {
    log(`fetch answered ${fetched.status}: ${fetched.data?.detail}`);
    process.exit(1);
  }
  const batch = fetched.data;
  for (const event of batch.events) await handle(event);
  const last = batch.events.at(-1);
  const committed = await post("commit", {
    partition: batch.partition,
    job_id: batch.job_id,
    lease_token: batch.lease_token,
    expect: batch.next_offset,
    next_offset: last ? last.offset + 1 : batch.next_offset,
  });
  if (committed.status === 409) {
    log(`partition ${batch.partition}: lease lost, the batch will be fetched again`);
    continue;
  }
  if (committed.status !== 200) {
    log(`commit answered ${committed.status}: ${committed.data?.detail}`);
    process.exit(1);
  }
  handled += batch.events.length;
}
log(`stopped after ${handled} event(s)`);
