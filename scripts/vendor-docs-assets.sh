#!/usr/bin/env bash
# Vendors the JavaScript and CSS of /docs (Swagger UI) and /redoc (Redoc) into the package,
# so the API docs load with no request leaving the server. Rerun after changing a version
# below; it rewrites src/dataloft/web/docs/ from the npm registry's tarballs (npm checks
# their integrity) and records what it took in VERSIONS.
set -euo pipefail

SWAGGER_UI_VERSION=5.35.0
# 2.x: the 3.x bundle uses import.meta and fails as the classic script the /redoc page loads
REDOC_VERSION=2.5.4

root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/src/dataloft/web/docs"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$work"
npm pack --silent "swagger-ui-dist@$SWAGGER_UI_VERSION" "redoc@$REDOC_VERSION" >/dev/null
mkdir swagger redoc
tar xzf "swagger-ui-dist-$SWAGGER_UI_VERSION.tgz" -C swagger
tar xzf "redoc-$REDOC_VERSION.tgz" -C redoc

rm -rf "$dest"
mkdir -p "$dest/swagger-ui" "$dest/redoc"
for f in swagger-ui-bundle.js swagger-ui.css favicon-32x32.png LICENSE NOTICE \
         swagger-ui-bundle.js.LICENSE.txt; do
  cp "swagger/package/$f" "$dest/swagger-ui/$f"
done
cp redoc/package/bundles/redoc.standalone.js redoc/package/LICENSE "$dest/redoc/"
# The bundles name source maps we do not ship; a browser asks for them only with its
# developer tools open, and then our server answers 404: drop the comment instead.
sed -i '/^\/\/# sourceMappingURL=/d' "$dest/swagger-ui/swagger-ui-bundle.js" \
  "$dest/swagger-ui/swagger-ui.css" "$dest/redoc/redoc.standalone.js"
sed -i 's|/\*# sourceMappingURL=[^*]*\*/||' "$dest/swagger-ui/swagger-ui.css"
# Redoc's menu footer draws its logo from cdn.redoc.ly (no option turns it off): an empty
# inline image instead, so /redoc makes no request outside the server.
sed -i 's|"https://cdn.redoc.ly/redoc/logo-mini.svg"|"data:image/svg+xml,%3Csvg xmlns=%22http://www.w3.org/2000/svg%22/%3E"|' \
  "$dest/redoc/redoc.standalone.js"

{
  echo "swagger-ui-dist $SWAGGER_UI_VERSION (Apache-2.0)"
  echo "redoc $REDOC_VERSION (MIT)"
  (cd "$dest" && find . -type f ! -name VERSIONS | LC_ALL=C sort | xargs sha256sum)
} > "$dest/VERSIONS"
echo "vendored into $dest"
