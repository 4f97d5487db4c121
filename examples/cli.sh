#!/bin/sh
# The seed's slides, on the command line: two stores, a few nodes, and a sync over stdin/stdout piped together by
# dupsh; then the key/value store. Run it from the repository: `sh examples/cli.sh` (it puts bin/ on the PATH and
# works in a temporary directory). Where `hyperlog` is installed (npm install -g @hyperlog/hyperlog), the same
# commands work as they are.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
PATH="$here/bin:$here/node_modules/.bin:$PATH"
hyperlog() { hyperlog.mjs "$@"; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

echo "# alice adds two nodes, the second linking to the first"
hello=$(hyperlog -d "$dir/alice" add hello)
hyperlog -d "$dir/alice" add world "$hello" >/dev/null
echo "# bob adds one of his own"
hyperlog -d "$dir/bob" add "hi from bob" >/dev/null

echo "# dupsh pipes each sync's stdout into the other's stdin"
hyperlog dupsh "hyperlog.mjs sync -d $dir/alice" "hyperlog.mjs sync -d $dir/bob"

echo "# bob's log now (change, value):"
hyperlog -d "$dir/bob" ls | sed -E 's/.*"value":("[^"]*").*"change":([0-9]+).*/  \2 \1/'
echo "# heads: $(hyperlog -d "$dir/bob" heads | wc -l | tr -d ' ')"

echo "# the key/value store: both set a color, sync, and see both values"
hyperlog -d "$dir/alice" kv put color blue >/dev/null
hyperlog -d "$dir/bob" kv put color green >/dev/null
hyperlog dupsh "hyperlog.mjs -d $dir/alice kv sync" "hyperlog.mjs -d $dir/bob kv sync" 2>/dev/null
echo "alice sees: $(hyperlog -d "$dir/alice" kv ls)"
hyperlog -d "$dir/bob" kv put color teal >/dev/null
hyperlog dupsh "hyperlog.mjs -d $dir/alice kv sync" "hyperlog.mjs -d $dir/bob kv sync" 2>/dev/null
echo "after bob's put: $(hyperlog -d "$dir/alice" kv get color | sed -E 's/"[0-9a-f]{64}"/KEY/g')"
