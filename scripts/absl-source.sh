#!/usr/bin/env bash
# Fetches the Debian source of the installed abseil (libabsl-dev's exact version, Debian's
# patches applied) into DIR, for the ThreadSanitizer build: Debian's libabsl is not built with
# -fsanitize=thread, so TSan cannot see absl::Mutex synchronize and reports every guarded
# access as a race. The TSan build compiles abseil's synchronization sources with
# instrumentation into its binaries instead (CMake: -DHOSTING_TSAN_ABSL_SRC=DIR).
#
#   scripts/absl-source.sh DIR
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=retry.sh
source "$root/scripts/retry.sh"
dir=${1:?usage: absl-source.sh DIR}
if [ -f "$dir/absl/synchronization/mutex.cc" ]; then
  echo "absl-source: $dir present"
  exit 0
fi
version=$(dpkg-query -W -f='${Version}' libabsl-dev)
upstream=${version%%-*}
mirror=$(debian_mirror)
work=$(mktemp -d /tmp/hosting-absl.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
for f in "abseil_${version}.dsc" "abseil_${upstream}.orig.tar.gz"; do
  retry 3 120 "downloading $f from $mirror" -- curl -fsS -O "$mirror/pool/main/a/abseil/$f"
done
debian_tar=$(sed -n 's/^ [0-9a-f]\{32\} [0-9]* \(abseil_.*\.debian\.tar\.[a-z]*\)$/\1/p' "abseil_${version}.dsc" | head -1)
retry 3 120 "downloading $debian_tar from $mirror" -- curl -fsS -O "$mirror/pool/main/a/abseil/$debian_tar"
dpkg-source --no-check -x "abseil_${version}.dsc" src >/dev/null
mkdir -p "$(dirname "$dir")"
rm -rf "$dir"
mv src "$dir"
echo "absl-source: abseil $version in $dir"
