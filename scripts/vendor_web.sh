#!/usr/bin/env bash
# Vendors the dashboard's chart libraries into src/dataloft/web/vendor/ with their licences,
# from the npm registry at pinned versions: the dashboard ships inside the package and
# loads nothing from a CDN. Run it again (and commit the result) to change a version.
set -euo pipefail
VEGA=5.33.1 VEGA_LITE=5.23.0 VEGA_EMBED=6.29.0
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/src/dataloft/web/vendor"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
npm pack --silent "vega@$VEGA" "vega-lite@$VEGA_LITE" "vega-embed@$VEGA_EMBED" >/dev/null
mkdir -p "$OUT"
for tgz in *.tgz; do name=${tgz%-*}; mkdir -p "$name" && tar xzf "$tgz" -C "$name"; done
for spec in "vega:$VEGA:vega.min.js" "vega-lite:$VEGA_LITE:vega-lite.min.js" \
            "vega-embed:$VEGA_EMBED:vega-embed.min.js"; do
  IFS=: read -r name version file <<<"$spec"
  # The source-map comment would make the browser ask for a map we do not ship.
  sed '/^\/\/# sourceMappingURL=/d' "$name/package/build/$file" > "$OUT/$file"
  if [ -f "$name/package/LICENSE" ]; then
    cp "$name/package/LICENSE" "$OUT/$name.LICENSE"
  else
    # vega's npm tarball carries no LICENSE file; its package.json says BSD-3-Clause, and
    # the text (same holder) is the one vega-lite ships.
    grep -q '"license": "BSD-3-Clause"' "$name/package/package.json"
    { echo "$name $version: BSD-3-Clause (package.json); the licence text of the Vega project:"
      echo; cat vega-lite/package/LICENSE; } > "$OUT/$name.LICENSE"
  fi
  echo "$name $version" >> "$WORK/versions"
done
sort "$WORK/versions" > "$OUT/VERSIONS"
echo "vendored into $OUT:"; cat "$OUT/VERSIONS"
