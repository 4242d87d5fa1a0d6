-- wrk script: GET /api/users/:id over ids 1..N (default 1000), all cached after first use.
local n = 1000
function init(args)
  n = tonumber(args[1] or "1000")
  math.randomseed(os.time() + math.random(1000))
end
function request()
  return wrk.format("GET", "/api/users/" .. math.random(1, n))
end
