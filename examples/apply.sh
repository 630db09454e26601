#!/bin/sh
# Example apply step for Gatehouse. It does not run Terraform: it records
# which approved plan it was asked to apply, so the whole flow can be tried
# without cloud credentials. A real script would run, for instance,
#   terraform apply "$GATEHOUSE_PLAN_FILE"
# when the run was submitted with its binary plan (plan_file); the JSON
# Gatehouse approved is in GATEHOUSE_PLAN_JSON, its SHA-256 in
# GATEHOUSE_PLAN_SHA256.
#
# Gatehouse's apply activity sets GATEHOUSE_RUN_ID, GATEHOUSE_WORKSPACE,
# GATEHOUSE_PLAN_SHA256, GATEHOUSE_PLAN_FILE and GATEHOUSE_PLAN_JSON.
set -eu

log="${APPLY_LOG:-./.gatehouse/applied.log}"
mkdir -p "$(dirname "$log")"

line="$(date -u +%FT%TZ) ${GATEHOUSE_RUN_ID:-} ${GATEHOUSE_WORKSPACE:-} ${GATEHOUSE_PLAN_SHA256:-}"
printf '%s\n' "$line" >>"$log"
echo "applied: run ${GATEHOUSE_RUN_ID:-?} workspace ${GATEHOUSE_WORKSPACE:-?} plan ${GATEHOUSE_PLAN_SHA256:-?} (${GATEHOUSE_PLAN_FILE:-no plan file}); logged to $log"
