#!/usr/bin/env bash
# The control plane's dependency rule (docs/architecture.md, "Rooms"): a room of controlplane/
# includes only the rooms below it, the pure release machine and autoscaler include only plain
# values, and no production file includes testing/. Prints every include that breaks it and
# exits 1; tests (*_test.cc) may include anything. Run by ctest as layering_test.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/controlplane"

declare -A allowed=(
  [spec]=""
  [store]=""
  [auth]="store spec"
  [leader]="store telemetry"
  [telemetry]=""
  [query]=""
  [reconcile]="store spec telemetry"
  [agents]="store"
  [traffic]="store"
  [service]="reconcile store spec telemetry"
  [cluster]="service agents reconcile store spec telemetry"
  [release]="service traffic agents query reconcile store spec telemetry"
  [autoscale]="service traffic agents query reconcile store spec telemetry"
  [runbook]="cluster release service traffic agents query reconcile store spec telemetry"
  [api]="runbook auth cluster release autoscale service traffic agents query reconcile store spec telemetry"
  [testing]="auth cluster release autoscale service traffic agents query reconcile store spec telemetry"
  [.]="leader auth api runbook cluster release autoscale service traffic agents query reconcile store spec telemetry"
)
# Pure logic that must not pull in a registry, a reconciler or a store backend for a struct.
declare -A pure=(
  [release/release_machine]="store/records.h agents/revision_metrics.h release/analysis.h release/release_machine.h"
  [release/analysis]="agents/revision_metrics.h release/analysis.h release/judge.h"
  [release/judge]="release/judge.h"
  [autoscale/autoscaler]="autoscale/autoscaler.h"
)

bad=0
while IFS= read -r file; do
  case "$file" in *_test.cc) continue ;; esac
  room=$(dirname "$file")
  room=${room#./}
  [ "$room" = "" ] && room=.
  if [ -z "${allowed[$room]+x}" ]; then
    echo "check-layers: $file: room '$room' is not in the map (add it to scripts/check-layers.sh and docs/architecture.md)"
    bad=1
    continue
  fi
  stem=${file#./}
  stem=${stem%.*}
  while IFS= read -r inc; do
    target=${inc#controlplane/}
    target_room=$(dirname "$target")
    [ "$target" = "$inc" ] && continue  # not a control-plane include
    if [ -n "${pure[$stem]+x}" ]; then
      case " ${pure[$stem]} " in *" $target "*) ;; *)
        echo "check-layers: $file includes $inc: the pure $stem takes values only (${pure[$stem]})"
        bad=1 ;;
      esac
      continue
    fi
    [ "$target_room" = "$room" ] && continue
    case " ${allowed[$room]} " in *" $target_room "*) ;; *)
      echo "check-layers: $file includes $inc: '$room' may use only: ${allowed[$room]:-nothing}"
      bad=1 ;;
    esac
  done < <(sed -n 's/^#include "\(controlplane\/[^"]*\)".*/\1/p' "$file")
done < <(find . -name '*.h' -o -name '*.cc' | sort)

if [ "$bad" = 0 ]; then
  echo "check-layers: every control-plane include follows the dependency rule"
fi
exit "$bad"
