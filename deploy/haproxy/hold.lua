-- Requests the front door holds instead of failing (haproxy.cfg, frontend web):
--
--   hold_for_servers(backend)  while the backend has no usable server: HAProxy was reloaded
--                              (its servers are added at runtime by hostd, which adds them back
--                              within a tick), or a service's first task is starting. Up to
--                              $HOSTING_HOLD_FOR_SERVERS_MS (default 5000), then HAProxy answers
--                              as it would have (503 when there is still no server). A process
--                              that is stopping (the old one after a reload) does not hold: it
--                              serves the connections it still has with the servers it has.
--   hold_while_paused(key)     while $HOSTING_PAUSE_MAP (default /etc/haproxy/pause.map) maps
--                              the key to "on": hostd's platform-restart sets "writes on" while
--                              the PostgreSQL primary restarts, so no write is in transit when
--                              the server ends its sessions, and "writes off" after. Up to
--                              $HOSTING_PAUSE_MAX_MS (default 30000), then the request goes on.
--                              The runtime API: set map /etc/haproxy/pause.map writes on|off
local hold_for_servers_ms = tonumber(os.getenv("HOSTING_HOLD_FOR_SERVERS_MS") or "") or 5000
local pause_max_ms = tonumber(os.getenv("HOSTING_PAUSE_MAX_MS") or "") or 30000
local pause_map = Map.new(os.getenv("HOSTING_PAUSE_MAP") or "/etc/haproxy/pause.map", Map._str)
local step_ms = 25

-- The "stopping" fetch is an integer here (1 while the process stops after a reload).
local function stopping(txn)
  local s = txn.f:stopping()
  return s == true or s == 1
end

core.register_action("hold_for_servers", {"http-req"}, function(txn, backend)
  local waited = 0
  while waited < hold_for_servers_ms and txn.f:nbsrv(backend) == 0 and not stopping(txn) do
    core.msleep(step_ms)
    waited = waited + step_ms
  end
end, 1)

core.register_action("hold_while_paused", {"http-req"}, function(txn, key)
  local waited = 0
  while waited < pause_max_ms and pause_map:lookup(key) == "on" do
    core.msleep(step_ms)
    waited = waited + step_ms
  end
end, 1)
