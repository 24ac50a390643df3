// An offload worker in plain Node (20+): no dependencies, only the global fetch.
//
//   OFFLOAD_SERVER=http://127.0.0.1:8750 OFFLOAD_TOKEN=... OFFLOAD_QUEUES=node node worker.mjs
//
// It long-polls POST /worker/fetch for jobs of its queues, runs each with the handler named by
// the job's kind, renews leases with POST /worker/heartbeat, and acknowledges each job with
// POST /worker/complete or POST /worker/fail, naming the lease token the fetch gave it.
// Retries, backoff and rescue stay with the server. Ctrl-C (SIGINT) or SIGTERM stops fetching,
// lets running jobs finish for OFFLOAD_GRACE seconds, then puts the rest back.

import os from "node:os";
import { randomUUID } from "node:crypto";

// --- your job code: one async function per kind ----------------------------------------------
class PermanentError extends Error {} // thrown: the job goes dead at once, no retry

const handlers = {
  "js.add": async ({ a, b }) => {
    if (typeof a !== "number" || typeof b !== "number") {
      throw new PermanentError("js.add needs numbers a and b");
    }
    return { sum: a + b };
  },
  "js.greet": async ({ name }) => `hello, ${name}`,
  "js.sleep": async ({ ms }) => {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return ms;
  },
};

// --- configuration -------------------------------------------------------------------------
const env = process.env;
const config = {
  server: (env.OFFLOAD_SERVER || "http://127.0.0.1:8750").replace(/\/+$/, ""),
  token: env.OFFLOAD_TOKEN || "",
  queues: (env.OFFLOAD_QUEUES || "node").split(",").map((q) => q.trim()).filter(Boolean),
  concurrency: Math.max(1, Number(env.OFFLOAD_CONCURRENCY || 4)),
  wait: Number(env.OFFLOAD_WAIT || 10), // long-poll seconds
  grace: Number(env.OFFLOAD_GRACE || 30),
  maxJobs: Number(env.OFFLOAD_MAX_JOBS || 0), // stop after this many (0: run until stopped)
  workerId: env.OFFLOAD_WORKER_ID || `node:${os.hostname()}:${process.pid}:${randomUUID().slice(0, 6)}`,
};

const log = (...args) => console.error(new Date().toISOString(), "[offload-worker]", ...args);

// --- HTTP ----------------------------------------------------------------------------------
class HttpError extends Error {
  constructor(status, problem) {
    super(`${status} ${problem?.title || ""}: ${problem?.detail || ""}`);
    this.status = status;
    this.problem = problem;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// POST JSON; retries network errors and 503 (honouring Retry-After) until `signal` aborts.
async function post(path, body, signal) {
  let delay = 250;
  for (;;) {
    let response;
    try {
      response = await fetch(config.server + path, {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          ...(config.token ? { Authorization: `Bearer ${config.token}` } : {}),
        },
        body: JSON.stringify(body),
        signal,
      });
    } catch (err) {
      if (signal?.aborted) throw err;
      log(`POST ${path} failed (${err.cause?.code || err.message}); retrying`);
      await sleep(delay);
      delay = Math.min(delay * 2, 5000);
      continue;
    }
    const text = await response.text();
    const data = text ? JSON.parse(text) : null;
    if (response.ok) return data;
    if (response.status === 503) {
      const after = Number(response.headers.get("retry-after") || 1);
      log(`POST ${path}: server busy, retrying in ${after}s`);
      await sleep(after * 1000);
      continue;
    }
    throw new HttpError(response.status, data);
  }
}

// --- the worker ----------------------------------------------------------------------------
const running = new Map(); // job id -> { job, done: Promise }
let stopping = false;
let handled = 0;
let leaseSeconds = 30;

// Stop fetching. A long poll under way is not aborted: jobs it claims are put back below.
function stop(reason) {
  if (stopping) return;
  stopping = true;
  log(`${reason}: finishing ${running.size} running job(s), then stopping`);
}

async function acknowledge(path, body) {
  try {
    return await post(path, body);
  } catch (err) {
    if (err instanceof HttpError && err.status === 409) {
      log(`job ${body.id}: lease was stale, outcome dropped (it runs again elsewhere)`);
      return null;
    }
    throw err;
  }
}

async function runJob(job) {
  const handler = handlers[job.kind];
  try {
    if (!handler) throw new PermanentError(`this worker has no handler for kind ${job.kind}`);
    let timer;
    const timeout = job.timeout
      ? new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`timed out after ${job.timeout}s`)), job.timeout * 1000);
        })
      : null;
    const work = handler(job.args, job);
    const result = await (timeout ? Promise.race([work, timeout]) : work);
    clearTimeout(timer);
    await acknowledge("/worker/complete", { id: job.id, token: job.token, result: result ?? null });
  } catch (err) {
    const error = `${err?.name || "Error"}: ${err?.message || String(err)}`.slice(0, 10000);
    await acknowledge("/worker/fail", {
      id: job.id,
      token: job.token,
      error,
      traceback: String(err?.stack || "").slice(0, 64000),
      retryable: !(err instanceof PermanentError),
    }).catch((e) => log(`job ${job.id}: could not report failure (${e.message})`));
  } finally {
    running.delete(job.id);
    handled += 1;
    if (config.maxJobs && handled >= config.maxJobs) stop(`handled ${handled} jobs`);
  }
}

async function heartbeat() {
  const leases = [...running.values()].map(({ job }) => ({ id: job.id, token: job.token }));
  try {
    const { lost } = await post("/worker/heartbeat", {
      worker: config.workerId,
      queues: config.queues,
      leases,
      running: leases.length,
    });
    for (const id of lost) log(`job ${id}: lease lost; its result will be refused`);
  } catch (err) {
    log(`heartbeat failed: ${err.message}`);
  }
}

async function main() {
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  log(`worker ${config.workerId} on ${config.server}, queues ${config.queues.join(",")}`);
  let beat = setInterval(heartbeat, (leaseSeconds * 1000) / 3);

  while (!stopping) {
    const free = config.concurrency - running.size;
    if (free <= 0) {
      await Promise.race([...running.values()].map((r) => r.done));
      continue;
    }
    let fetched;
    try {
      fetched = await post(
        "/worker/fetch",
        {
          worker: config.workerId,
          queues: config.queues,
          limit: free,
          wait: config.wait,
          running: running.size,
          host: os.hostname(),
          pid: process.pid,
        },
      );
    } catch (err) {
      if (stopping) break;
      log(`fetch failed: ${err.message}`);
      await sleep(1000);
      continue;
    }
    if (fetched.lease_seconds !== leaseSeconds) {
      leaseSeconds = fetched.lease_seconds;
      clearInterval(beat);
      beat = setInterval(heartbeat, (leaseSeconds * 1000) / 3);
    }
    if (stopping) {
      const leases = fetched.jobs.map((job) => ({ id: job.id, token: job.token }));
      if (leases.length) await post("/worker/release", { leases }).catch(() => {});
      break;
    }
    for (const job of fetched.jobs) {
      running.set(job.id, { job, done: null });
      running.get(job.id).done = runJob(job);
    }
  }

  const deadline = Date.now() + config.grace * 1000;
  while (running.size && Date.now() < deadline) {
    await Promise.race([sleep(deadline - Date.now()), ...[...running.values()].map((r) => r.done)]);
  }
  clearInterval(beat);
  const leases = [...running.values()].map(({ job }) => ({ id: job.id, token: job.token }));
  await post("/worker/release", { worker: config.workerId, leases, goodbye: true }).catch((err) =>
    log(`could not release jobs: ${err.message}`),
  );
  log(`stopped after ${handled} job(s)`);
}

main().catch((err) => {
  log(`fatal: ${err.stack || err}`);
  process.exit(1);
});
