#!/usr/bin/env bash
# The Terraform that can be checked without a provider (none can be downloaded on these
# machines): `terraform fmt -check` over terraform/, then `terraform validate` and
# `terraform test` of every module under terraform/modules that has tests/ (they use no
# provider), then the rules of the modules that need a provider (terraform/aws), read from their
# HCL (tests/config/check-terraform-rules.mjs; `npm ci --prefix tests/config` first). Run by ctest
# as terraform_check_test. Exits non-zero naming what failed; a missing terraform or node is a
# failure, not a skip.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
command -v terraform >/dev/null || { echo "check-terraform: terraform is not installed" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export TF_IN_AUTOMATION=1 TF_INPUT=0
# A CLI configuration that exists (an unset or missing one only warns, but loudly).
: >"$tmp/terraformrc"
export TF_CLI_CONFIG_FILE=$tmp/terraformrc
failed=0
if terraform fmt -check -recursive -diff "$root/terraform"; then
  echo "ok    terraform fmt -check terraform/"
else
  echo "FAIL  terraform fmt -check terraform/ (terraform fmt -recursive terraform/ fixes it)"
  failed=1
fi
for tests in "$root"/terraform/modules/*/tests; do
  module=$(dirname "$tests")
  name=${module#"$root/"}
  # The module's .terraform and state go to a scratch directory, never into the tree.
  TF_DATA_DIR=$tmp/${module##*/}
  export TF_DATA_DIR
  if (cd "$module" && terraform init -backend=false -no-color >"$tmp/init.log" 2>&1 &&
      terraform validate -no-color >"$tmp/validate.log" 2>&1 &&
      terraform test -no-color >"$tmp/test.log" 2>&1); then
    echo "ok    terraform test $name ($(grep -o '[0-9]* passed' "$tmp/test.log"))"
  else
    echo "FAIL  terraform init/validate/test $name"
    cat "$tmp"/init.log "$tmp"/validate.log "$tmp"/test.log 2>/dev/null | sed 's/^/      /'
    failed=1
  fi
  rm -f "$module/terraform.tfstate" "$module/terraform.tfstate.backup"
done
if [ ! -d "$root/tests/config/node_modules/@cdktf/hcl2json" ]; then
  echo "FAIL  tests/config/node_modules is missing @cdktf/hcl2json: npm ci --prefix tests/config"
  failed=1
elif node "$root/tests/config/check-terraform-rules.mjs" >"$tmp/rules.log" 2>&1; then
  echo "ok    the provider modules' rules ($(grep -c '^ok' "$tmp/rules.log") checks)"
else
  echo "FAIL  the provider modules' rules:"
  grep -v '^ok' "$tmp/rules.log" | sed 's/^/      /'
  failed=1
fi
exit "$failed"
