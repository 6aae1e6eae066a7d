#!/usr/bin/env bash
# Installs the pinned browser libraries (package-lock.json) and copies their dist files and
# licenses into ../static/vendor/, which is committed: the console needs no network or CDN.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --ignore-scripts --no-audit --no-fund
out=../static/vendor
rm -rf "$out" && mkdir -p "$out"
cp node_modules/htmx.org/dist/htmx.min.js "$out/htmx.min.js"
cp node_modules/htmx.org/LICENSE "$out/htmx.LICENSE"
cp node_modules/chart.js/dist/chart.umd.min.js "$out/chart.umd.min.js"
cp node_modules/chart.js/LICENSE.md "$out/chart.js.LICENSE.md"
# chart.js's UMD build bundles @kurkle/color
cp node_modules/@kurkle/color/LICENSE.md "$out/kurkle-color.LICENSE.md"
cp node_modules/openpgp/dist/openpgp.min.mjs "$out/openpgp.min.mjs"
cp node_modules/openpgp/LICENSE "$out/openpgp.LICENSE"
node -e 'const l=require("./package-lock.json").packages;for(const[k,v]of Object.entries(l))if(k)console.log(k.replace("node_modules/",""),v.version)' > "$out/VERSIONS"
