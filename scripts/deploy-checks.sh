#!/usr/bin/env bash
# The offline checks of what is deployed to AWS: the SAM template (cfn-lint, sam validate --lint),
# its generated schemas, and every state machine (asl-validator). Quick (a few seconds); installs
# nothing: scripts/tools.sh installs cfn-lint, aws-sam-cli and asl-validator into .tools/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TOOLS="$ROOT/.tools"

need() {
    if [[ ! -x "$1" ]]; then
        echo "deploy-checks.sh: $1 is missing; run scripts/tools.sh $2" >&2
        exit 1
    fi
}
need "$TOOLS/venv/bin/cfn-lint" cfn-lint
need "$TOOLS/venv/bin/sam" aws-sam-cli
need "$TOOLS/asl-validator/node_modules/.bin/asl-validator" asl-validator

echo "cfn-lint template.yaml" >&2
"$TOOLS/venv/bin/cfn-lint" template.yaml

echo "sam validate --lint" >&2
# sam validates offline; it only wants a region and some credentials to exist.
AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" \
    AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-offline}" \
    AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-offline}" \
    SAM_CLI_TELEMETRY=0 \
    "$TOOLS/venv/bin/sam" validate --lint --template-file template.yaml

echo "template.yaml's schemas match schemas/" >&2
python3 scripts/template-schemas.py --check

shopt -s nullglob
machines=(statemachines/*.asl.json)
if [[ ${#machines[@]} -eq 0 ]]; then
    echo "deploy-checks.sh: no statemachines/*.asl.json" >&2
    exit 1
fi
for machine in "${machines[@]}"; do
    echo "asl-validator $machine" >&2
    "$TOOLS/asl-validator/node_modules/.bin/asl-validator" --json-path "$machine"
done
