#!/usr/bin/env bash
# The walkthrough in examples/walkthrough/README.md, as written, end to end
# on one machine. Run it from anywhere in the repository:
#
#   bash examples/walkthrough/walkthrough.sh
#
# It needs bash, go and awk. Settings (all optional):
#   SCIMD   a scimd binary to use (default: build one from ./cmd/scimd)
#   LISTEN  address scimd listens on (default: 127.0.0.1:8080)
#   WORK    working directory (default: a new temporary directory)
set -euo pipefail

cd "$(dirname "$0")/../.."
WORK=${WORK:-$(mktemp -d)}
LISTEN=${LISTEN:-127.0.0.1:8080}
# The commands below call scimd from PATH, as the README does.
mkdir -p "$WORK/bin"
if [ -z "${SCIMD:-}" ]; then
	go build -o "$WORK/bin/scimd" ./cmd/scimd
else
	ln -sf "$(cd "$(dirname "$SCIMD")" && pwd)/$(basename "$SCIMD")" "$WORK/bin/scimd"
fi
export PATH="$WORK/bin:$PATH"

step() { printf '\n==> %s\n' "$*"; }

# wait_until CMD...: retry CMD for up to 30 seconds, for what happens in
# the background: scimd starting, and the reload of a changed policy
# directory. (`scimd teammate` itself waits until every acknowledged SCIM
# change is reconciled; see --settle.)
wait_until() {
	for _ in $(seq 300); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 0.1
	done
	echo "timed out waiting for: $*" >&2
	return 1
}

step "1. Start scimd with a copy of the default policy"
cp -R policies "$WORK/live"
export SCIMD_ADMIN_TOKEN=walkthrough-admin-secret-not-for-production
export SCIMD_SERVER=http://$LISTEN
scimd serve --listen "$LISTEN" --data "$WORK/data" --policies "$WORK/live" > "$WORK/serve.log" 2>&1 &
SCIMD_PID=$!
trap 'kill "$SCIMD_PID" 2>/dev/null || true' EXIT
wait_until grep -q "SCIM base URL" "$WORK/serve.log"
cat "$WORK/serve.log"

step "2. Create the token the identity provider uses"
OKTA_TOKEN=$(scimd token create --name okta)
scimd token list

step "3. Okta pushes users and groups (recorded requests)"
go run ./examples/walkthrough/replay --url "$SCIMD_SERVER/scim/v2" --token "$OKTA_TOKEN" --settle-token "$SCIMD_ADMIN_TOKEN" examples/idp/okta/sequence.json

step "4. Roles appear"
scimd teammate list
scimd teammate show bob@example.com

step "5. A new hire joins Platform Engineering, a group no policy maps yet"
go run ./examples/walkthrough/replay --url "$SCIMD_SERVER/scim/v2" --token "$OKTA_TOKEN" examples/walkthrough/new-hire.json
scimd teammate show erin@example.com

step "6. Propose a policy change: Platform Engineering gets viewer"
cp -R "$WORK/live" "$WORK/candidate"
awk '{ print } /^group_roles := \{$/ { print "\t\"Platform Engineering\": \"viewer\"," }' "$WORK/live/groups.rego" > "$WORK/candidate/groups.rego"
cat >> "$WORK/candidate/groups_test.rego" <<'EOF'

test_platform_engineering_grants_viewer if {
	scimd.group == {"role": "viewer"} with input as {"group": {"displayName": "Platform Engineering"}}
}
EOF
scimd policy test "$WORK/candidate" | tail -n 3

step "7. Preview it against the live state"
status=0
scimd plan --policies "$WORK/candidate" || status=$?
echo "scimd plan exit status: $status"
scimd plan --policies "$WORK/candidate" --format markdown > "$WORK/plan.md" || true
cat "$WORK/plan.md"

step "8. A candidate whose test fails is refused, naming the test"
cp -R "$WORK/candidate" "$WORK/broken"
sed -e 's/"Platform Engineering": "viewer"/"Platform Engineering": "support"/' "$WORK/candidate/groups.rego" > "$WORK/broken/groups.rego"
status=0
scimd plan --policies "$WORK/broken" || status=$?
echo "scimd plan exit status: $status"

step "9. Merge: the live directory gets the candidate, scimd reloads it"
cp "$WORK/candidate/groups.rego" "$WORK/candidate/groups_test.rego" "$WORK/live/"
wait_until sh -c 'scimd teammate show erin@example.com | grep -q "role: *viewer"'
scimd teammate show erin@example.com

step "10. Read the audit trail"
scimd audit --type policy
scimd audit --teammate erin@example.com
scimd report
scimd audit verify

step "11. Stop scimd and verify its data directory offline"
kill "$SCIMD_PID"
wait "$SCIMD_PID"
scimd audit verify --data "$WORK/data"
echo
echo "walkthrough complete"
