#!/usr/bin/env bash
# The Terraform that can be checked without a provider (none can be downloaded on these
# machines): `terraform fmt -check` over terraform/, then `terraform validate` and
# `terraform test` of every module under terraform/modules that has tests/ (they use no
# provider). Run by ctest as terraform_check_test. Exits non-zero naming what failed; a missing
# terraform is a failure, not a skip.
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
exit "$failed"
