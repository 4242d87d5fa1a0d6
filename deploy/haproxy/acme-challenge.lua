-- The ACME HTTP-01 responder of the front door (haproxy.cfg: "use-service lua.acme_challenge").
-- Answers GET /.well-known/acme-challenge/<token> with the file <token> that the ACME client
-- (scripts/tls.sh, through dehydrated) wrote in $HOSTING_ACME_CHALLENGE_DIR; a token that is not a
-- plain base64url word, or has no file, is a 404.
local dir = os.getenv("HOSTING_ACME_CHALLENGE_DIR") or "/etc/hosting/tls/acme-challenge"
local prefix = "/.well-known/acme-challenge/"

local function reply(applet, status, body)
  applet:set_status(status)
  applet:add_header("content-type", "text/plain")
  applet:add_header("content-length", tostring(#body))
  applet:add_header("cache-control", "no-store")
  applet:start_response()
  applet:send(body)
end

core.register_service("acme_challenge", "http", function(applet)
  local token = string.sub(applet.path, #prefix + 1)
  if not string.match(token, "^[A-Za-z0-9_-]+$") then
    return reply(applet, 404, "no such challenge\n")
  end
  local f = io.open(dir .. "/" .. token, "r")
  if f == nil then
    return reply(applet, 404, "no such challenge\n")
  end
  local body = f:read("*a")
  f:close()
  reply(applet, 200, body)
end)
