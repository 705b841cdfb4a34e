#!/usr/bin/env bash
# Writes a held-out set of 17 files of common kinds to DIR (default /tmp/held): cut from the
# training corpus, none of them part of the primer (onnx-models/primer.py) and none from the
# bench corpus. Used to check that the primer helps beyond the bench files:
#   benches/heldout.sh /tmp/held
#   cargo bench --bench corpus -- /tmp/held --only nc --threads 2
#   cargo bench --bench corpus -- /tmp/held --only nc --threads 2 --no-primer
set -euo pipefail
out=${1:-/tmp/held}
corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
for f in "$(dirname "$0")"/../../shared/corpus/train/*.tar.xz; do tar -xJf "$f" -C "$corpus"; done
cd "$corpus"
mkdir -p "$out"
nth() { find "$1" "${@:3}" -type f | LC_ALL=C sort | sed -n "$2p"; }
cp markup/config_yaml_toml/"$(cd markup/config_yaml_toml && find . -name '*.yml' | LC_ALL=C sort | sed -n 20p)" "$out/conf.yml"
cp "$(nth markup/docbook_xsl_xml 1 -name '*.xml')" "$out/doc.xml"
head -c 60000 "$(nth misc/elf_x86_64_debian 1)" > "$out/elf.bin"
cp "$(nth misc/images 1 -name '*.png' -size +10k)" "$out/img.png"
head -c 40000 markup/man_pages_roff/jq/man1/jq.1 > "$out/jq1"
head -c 40000 "$(nth code/js_ts_npm 1 -path '*moment*' -name moment.js)" > "$out/m.js"
cp markup/python_docs_html/library/mimetypes.html "$out/mimetypes.html"
head -c 30000 logs/elastic_examples_logs/Common_Data_Formats/nginx_json_plus_logs/nginxplus_json_logs > "$out/nginx.log"
cp "$(nth json/npm_package_json 3 -name package.json -size +2k)" "$out/package.json"
cp "$(nth code/python_sdists 5 -name '*.py' -size +20k)" "$out/py.py"
cp "$(nth code/rust_crates 50 -name '*.rs' -size +10k)" "$out/r.rs"
cp "$(nth markup/markdown_rst_docs 10 -name '*.md' -size +5k)" "$out/readme.md"
cp code/go_stdlib/bufio/scan.go "$out/scan.go"
cp "$(nth code/c_vendored_in_sys_crates 100 -name '*.c')" "$out/some.c"
cp "prose/sotu_en/$(ls prose/sotu_en | LC_ALL=C sort | tail -1)" "$out/sotu_last.txt"
head -c 20000 "$(nth misc/csv_elastic_examples 1 -name '*.csv')" > "$out/table.csv"
head -c 40000 prose/gutenberg_en_authorship/Mark_Twain/A_Tramp_Abroad.txt > "$out/tramp.txt"
ls -l "$out"
