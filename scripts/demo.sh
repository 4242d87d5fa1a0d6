#!/usr/bin/env bash
# The main job, from a fresh machine: installs what is missing, builds, starts dockerd and a
# one-node Swarm, builds the images, starts hostd, deploys the sample service, releases a new
# version of it and shows what runs. Idempotent: run it again at will.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
hostctl="$root/build/hostctl/hostctl"
# hostd's bootstrap admin token (written at its first start; docs/security.md).
export HOSTCTL_TOKEN_FILE=${HOSTCTL_TOKEN_FILE:-${HOSTING_STATE_DIR:-/var/lib/hosting}/admin.token}
step() { printf '\n==> %s\n' "$*"; }

step "Installing dependencies";            "$root/scripts/install-deps.sh"
step "Building";                           "$root/scripts/build.sh"
step "Starting dockerd and the Swarm";     "$root/scripts/start-docker.sh"
step "Building images";                    "$root/scripts/images.sh"
step "Building the web console";           "$root/scripts/build-console.sh"
step "Starting HAProxy, hostd and hostagent"; "$root/scripts/platform-up.sh"

step "Deploying the sample service (hosting/sample:v1, 3 replicas)"
sed 's/^image: .*/image: hosting\/sample:v1/' "$root/deploy/examples/web.yaml" \
  | "$hostctl" service apply -f - --wait --wait-timeout 120

step "Through HAProxy (127.0.0.1:8080): version $(curl -s http://127.0.0.1:8080/version)"

step "Releasing v2 as a canary: 25 %, 50 %, then all, through HAProxy's weights"
"$hostctl" release start web --image hosting/sample:v2 --strategy canary \
  --steps 25,pause:5s,50,pause:5s --reason "scripts/demo.sh" --wait --wait-timeout 300

step "Through HAProxy now: version $(curl -s http://127.0.0.1:8080/version)"
"$hostctl" release history web

step "What hostd reports"
"$hostctl" service list
echo
"$hostctl" service get web

step "What Swarm runs"
docker service ls --filter label=hosting.service=web
mapfile -t web_services < <(docker service ls -q --filter label=hosting.service=web)
docker service ps --filter desired-state=running "${web_services[@]}"

step "The release, as the event log recorded it"
"$hostctl" events --service web --type release. | tail -20

step "Autoscaling web on CPU: 3..6 tasks, 70 % of each task's 0.25-core limit"
"$hostctl" autoscale set web --min 3 --max 6 --cpu 70 --interval 2s
sleep 5
"$hostctl" autoscale status web

cat <<TXT

hostd keeps running (127.0.0.1:50051; metrics on http://127.0.0.1:9464/metrics), with HAProxy
in front of the service (http://127.0.0.1:8080/, stats on http://127.0.0.1:8404/stats).
The web console and the HTTP/JSON API: http://127.0.0.1:8480/ (log in with the token in
$HOSTCTL_TOKEN_FILE; docs/console.md, docs/api.md).
Try:  build/hostctl/hostctl rollback web --wait
      build/hostctl/hostctl release start web --image hosting/sample:v1 --strategy blue-green
      build/hostctl/hostctl autoscale status web       # docs/autoscaling.md
      build/hostctl/hostctl service scale web 5 --force --wait   # refused without --force: autoscaled
      docker service scale $(docker service ls --filter label=hosting.service=web --format "{{.Name}}")=0   # drift: restored within a second
      build/hostctl/hostctl events --follow
Stop: kill \$(cat /var/lib/hosting/hostd.pid) \$(cat /var/lib/hosting/hostagent.pid); docker rm -f hosting-haproxy
TXT
