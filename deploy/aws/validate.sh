#!/usr/bin/env bash
# Validates the AWS template offline: cfn-lint (all rule levels: errors, warnings and
# informational) and checkov on deploy/aws/voxseal.yaml, plus checkov's IAM checks on the
# contractor-upload permissions boundary (deploy/aws/upload-boundary.json), which the template
# embeds as an Fn::Sub string that scanners cannot look into. Exits non-zero on any finding.
#
#   deploy/aws/validate.sh
#
# Tools (pinned; installed by `scripts/setup.sh --test`):
#   cfn-lint  <repo>/.venv/bin/cfn-lint            scripts/requirements-test.txt
#   checkov   <repo>/.venv/checkov/bin/checkov     deploy/aws/requirements-checkov.txt
#             (a venv of its own: its pins clash with the test venv's)
# Env: VOXSEAL_CFN_LINT, VOXSEAL_CHECKOV override the tools' paths.
# Deliberate exceptions are checkov skips in the template's Metadata, each with its reason;
# they are listed in the output.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
template="$here/voxseal.yaml"
boundary="$here/upload-boundary.json"
cfn_lint="${VOXSEAL_CFN_LINT:-$root/.venv/bin/cfn-lint}"
checkov="${VOXSEAL_CHECKOV:-$root/.venv/checkov/bin/checkov}"
python="$root/.venv/bin/python"

say() { printf '[validate] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 2; }

pinned() { # pinned NAME FILE -> the exact version pinned in FILE
    sed -n "s/^$1==\([^ ;#]*\).*/\1/p" "$2" | head -n1
}

for tool in "$cfn_lint" "$checkov" "$python"; do
    [[ -x $tool ]] || die "$tool not found: run scripts/setup.sh --test"
done
want_lint="$(pinned cfn-lint "$root/scripts/requirements-test.txt")"
want_ckv="$(pinned checkov "$here/requirements-checkov.txt")"
have_lint="$("$cfn_lint" --version | awk '{print $2}')"
export CKV_SKIP_PACKAGE_UPDATE_CHECK=true # no network: no update check, no guideline download
have_ckv="$("$checkov" --version)"
[[ $have_lint == "$want_lint" ]] || die "cfn-lint is $have_lint, pinned $want_lint: run scripts/setup.sh --test"
[[ $have_ckv == "$want_ckv" ]] || die "checkov is $have_ckv, pinned $want_ckv: run scripts/setup.sh --test"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=0

# --- cfn-lint ---------------------------------------------------------------------------------
say "cfn-lint $have_lint: $template"
if "$cfn_lint" --include-checks I --format parseable -- "$template" > "$work/cfn-lint.txt" 2>&1; then
    lint_summary="cfn-lint clean"
else
    failed=1
    cat "$work/cfn-lint.txt" >&2
    lint_summary="cfn-lint: $(grep -c . "$work/cfn-lint.txt" || true) finding(s)"
fi

# --- the boundary, rendered into a one-resource template checkov can read ------------------------
"$python" - "$boundary" "$work/boundary-template.json" <<'PY'
import json, sys
src, out = sys.argv[1], sys.argv[2]
text = open(src, encoding="utf-8").read()
for placeholder, value in {
    "${AWS::Partition}": "aws",
    "${AWS::Region}": "eu-west-1",
    "${BucketName}": "voxseal-data-123456789012-eu-west-1",
    "${KmsKeyArn}": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
}.items():
    text = text.replace(placeholder, value)
assert "${" not in text, "unknown placeholder in upload-boundary.json"
json.dump({
    "AWSTemplateFormatVersion": "2010-09-09",
    "Description": "deploy/aws/upload-boundary.json rendered for checkov (validate.sh)",
    "Resources": {"UploadBoundaryPolicy": {
        "Type": "AWS::IAM::ManagedPolicy",
        "Properties": {"PolicyDocument": json.loads(text)},
    }},
}, open(out, "w", encoding="utf-8"), indent=2)
PY

# --- checkov ----------------------------------------------------------------------------------
run_checkov() { # run_checkov FILE REPORT -> JSON report; checkov exits 1 when a check fails
    local rc=0
    "$checkov" --framework cloudformation --file "$1" --skip-download --output json \
        > "$2" 2> "$2.log" || rc=$?
    if [[ $rc -gt 1 || ! -s $2 ]]; then
        cat "$2.log" >&2
        die "checkov failed on $1 (exit $rc)"
    fi
}
say "checkov $have_ckv: $template"
run_checkov "$template" "$work/checkov-template.json"
say "checkov $have_ckv: $boundary (rendered)"
run_checkov "$work/boundary-template.json" "$work/checkov-boundary.json"

if ! ckv_summary="$("$python" - "$work/checkov-template.json" "$work/checkov-boundary.json" <<'PY'
import json, sys

def load(path):
    data = json.load(open(path, encoding="utf-8"))
    return data if isinstance(data, list) else [data]

total = {"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0}
bad = False
for path, label in zip(sys.argv[1:], ["voxseal.yaml", "rendered-boundary.json"]):
    reports = load(path)
    passed = sum(len(r.get("results", {}).get("passed_checks", [])) for r in reports)
    if passed == 0:
        print(f"checkov ran no check on {label}", file=sys.stderr)
        bad = True
    for r in reports:
        summary = r.get("summary", {})
        for k in total:
            total[k] += summary.get(k, 0)
        if summary.get("parsing_errors"):
            print(f"checkov could not parse {label}", file=sys.stderr)
            bad = True
        for c in r.get("results", {}).get("failed_checks", []):
            bad = True
            print(f"FAILED {c['check_id']} {c['resource']} ({label}:{c['file_line_range'][0]}): "
                  f"{c['check_name']}", file=sys.stderr)
        for c in r.get("results", {}).get("skipped_checks", []):
            reason = " ".join((c.get("check_result", {}).get("suppress_comment") or "").split())
            print(f"skipped {c['check_id']} {c['resource']}: {reason}", file=sys.stderr)
print(f"checkov {total['passed']} passed, {total['failed']} failed, {total['skipped']} skipped")
sys.exit(1 if bad else 0)
PY
)"; then
    failed=1
fi

if [[ $failed -ne 0 ]]; then
    say "FAILED: $lint_summary; ${ckv_summary:-checkov summary unavailable}"
    exit 1
fi
say "ok: $lint_summary; $ckv_summary (cfn-lint $have_lint, checkov $have_ckv)"
