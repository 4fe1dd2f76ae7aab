-- POSTs JSON bodies read from a file, one body per line, in turn; stops after a number of requests.
--   wrk -t1 -c16 -d10s -s post.lua URL -- BODIES_FILE [MAX_REQUESTS]
-- done() prints one line "JSON {...}" with the request count, errors and latency percentiles (ms).

local bodies = {}
local max_requests = 0
local sent = 0
local answered = 0

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then
      bodies[#bodies + 1] = line
    end
  end
  assert(#bodies > 0, "no bodies in " .. args[1])
  max_requests = tonumber(args[2] or "0")
end

function request()
  sent = sent + 1
  local body = bodies[(sent - 1) % #bodies + 1]
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  answered = answered + 1
  if max_requests > 0 and answered >= max_requests then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  io.write(string.format(
    "JSON {\"requests\": %d, \"seconds\": %.6f, \"errors_status\": %d, \"errors_connect\": %d, " ..
    "\"errors_read\": %d, \"errors_write\": %d, \"errors_timeout\": %d, \"p50_ms\": %.3f, \"p95_ms\": %.3f, " ..
    "\"p99_ms\": %.3f, \"mean_ms\": %.3f}\n",
    summary.requests, summary.duration / 1e6, summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.mean / 1000))
end
