-- wrk script for the load scenarios (tests/load/scenarios.sh): each connection is one user
-- who sends a request, waits its think time, and sends the next. The mix is the reference's
-- k6 mix: 60 % GET /api/users/:id, 30 % GET /api/users, 10 % POST /api/users.
--   wrk -c USERS -d DURATION -s users.lua URL -- THINK_MS IDS
-- IDS: comma-separated ids of existing users (ids are not contiguous: a refused insert still
-- takes a value from the sequence).
-- done() prints one JSON line: requests, errors by kind, latency percentiles (ms).
local think_ms = 1000
local ids = {1}
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  think_ms = tonumber(args[1] or "1000")
  ids = {}
  for v in string.gmatch(args[2] or "1", "%d+") do table.insert(ids, v) end
  thread_id = id
  math.randomseed(os.time() * 1000 + id)
end

function delay()
  if think_ms <= 0 then return 0 end
  -- +-20 % so users do not move in lockstep.
  return math.floor(think_ms * (0.8 + 0.4 * math.random()))
end

function request()
  local r = math.random()
  if r < 0.6 then
    return wrk.format("GET", "/api/users/" .. ids[math.random(1, #ids)])
  elseif r < 0.9 then
    return wrk.format("GET", "/api/users")
  end
  counter = counter + 1
  local email = string.format("load-%d-%d-%d@example.com", os.time(), thread_id, counter)
  return wrk.format("POST", "/api/users", {["Content-Type"] = "application/json"},
                    string.format('{"name":"Load %d","email":"%s"}', counter, email))
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,' ..
    '"timeout":%d,"p50_ms":%.1f,"p95_ms":%.1f,"p99_ms":%.1f,"max_ms":%.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
