-- wrk script: POST /api/users with an email unique across threads and runs.
-- `tid` and `run` are globals of each thread's Lua state: setup() and init() set them.
local counter = 0
local threads = 0

function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

function init(args)
  run = args[1] or tostring(os.time())
end

function request()
  counter = counter + 1
  local body = string.format('{"name":"load %d-%d","email":"load-%s-%d-%d@example.com"}',
                             tid, counter, run, tid, counter)
  return wrk.format("POST", "/api/users", {["Content-Type"] = "application/json"}, body)
end
