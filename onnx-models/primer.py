#!/usr/bin/env python3
"""Builds nc-primer.bin: the text the mixing predictor codes (without output) before every
block from format version 7, so a block starts knowing what text, code and markup look like
instead of from empty tables. It plays the part of zstd's and brotli's dictionaries.

The primer is cut from the training corpus only (never the bench corpus): one typical file
per common kind of data, a slice of each cut at line boundaries, in the order below. Data
and code come first and English prose last, since the most recent bytes weigh most in the
tables and the gate when the block starts.

    python3 onnx-models/primer.py ../shared/corpus/train onnx-models/nc-primer.bin

Format version 13's primer takes the slices of data, code and markup three times as long
as the list below says (`--scale 3`) and those of prose five times (`--prose-scale 5`),
with four more novels and plays (`V13_PROSE`) before the list's prose (`docs/tuning.md`,
"A primer with more prose", has the lengths measured). Versions 7 to 12 prime with the
list's lengths alone:

    python3 onnx-models/primer.py ../shared/corpus/train onnx-models/nc-primer-v7.bin --version 7

With --x86 it builds nc-primer-x86.bin instead, what blocks through the x86 filter are
primed with from format version 13: one whole x86-64 executable (its headers, symbol and
relocation tables, code, constants and unwind tables, in the order a linker lays them
out), the one in the corpus that was closest to the text primer's size when it was chosen.
The decoder filters it as it filters such a block before priming with it.

    python3 onnx-models/primer.py ../shared/corpus/train onnx-models/nc-primer-x86.bin --x86

Unpacks the archives into a temporary folder (or reads --unpacked DIR), prints each piece's
length and the sha256 of the result. Deterministic: same corpus, same bytes.
"""
import argparse
import hashlib
import os
import subprocess
import sys
import tempfile

# (path inside the unpacked corpus, offset, bytes). Offsets skip front matter where a file
# opens with some (a novel's contents, a log's first lines are as good as any).
PIECES = [
    ("logs/elastic_examples_logs/Common_Data_Formats/apache_logs/apache_logs", 0, 3000),
    ("logs/elastic_examples_logs/Machine_Learning/Security_Analytics_Recipes/"
     "suspicious_login_activity/data/auth.log", 0, 2000),
    ("misc/csv_vega_penguins/palmerpenguins/penguins.csv", 0, 2000),
    ("json/vega_datasets/vega_datasets/dataset_info.json", 0, 3000),
    ("json/npm_package_json/cldr-core-48.2.0/package.json", 0, 1500),
    ("markup/config_yaml_toml/crates/aho-corasick-1.1.5/.github/workflows/ci.yml", 0, 3000),
    ("markup/docbook_xsl_xml/html/admon.xsl", 0, 3000),
    ("code/go_stdlib/bufio/bufio.go", 0, 4000),
    ("code/java_kotlin_objc_cpp_npm/cordova-android-15.1.0/framework/src/org/apache/"
     "cordova/AllowList.java", 0, 3000),
    ("code/js_ts_npm/axios-1.21.1/index.d.ts", 0, 3000),
    ("code/js_ts_npm/lodash-4.18.1/maxBy.js", 0, 2000),
    ("code/rust_crates/serde-1.0.229/src/lib.rs", 0, 4000),
    ("code/python_sdists/flask-3.1.3/src/flask/app.py", 0, 5000),
    ("code/c_vendored_in_sys_crates/libz-sys-1.1.31/src/zlib/deflate.c", 0, 6000),
    ("markup/markdown_rst_docs/crates/lz4-sys-1.11.1+lz4-1.10.0/liblz4/lib/README.md", 0, 3000),
    ("markup/postgresql_docs_html/app-dropdb.html", 0, 5000),
    ("markup/man_pages_roff/manpages/man1/locale.1", 0, 6000),
    ("prose/sotu_en/1790_george_washington_n.txt", 0, 6000),
    ("prose/gutenberg_en_authorship/Herman_Melville/White_Jacket.txt", 60000, 6000),
    ("prose/gutenberg_en_authorship/William_Shakespeare/The_Tempest.txt", 20000, 6000),
    ("prose/gutenberg_en_authorship/Mark_Twain/Life_on_the_Mississippi.txt", 60000, 8000),
    ("prose/gutenberg_en_authorship/Jane_Austen/Emma.txt", 60000, 8000),
    ("prose/gutenberg_en_authorship/Charles_Dickens/Great_Expectations.txt", 60000, 8000),
]

# Format version 13's further prose, placed before the list's (which ends it): slices of other
# books by the same five authors.
V13_PROSE = [
    ("prose/gutenberg_en_authorship/William_Shakespeare/Hamlet.txt", 20000, 6000),
    ("prose/gutenberg_en_authorship/Mark_Twain/A_Tramp_Abroad.txt", 60000, 6000),
    ("prose/gutenberg_en_authorship/Jane_Austen/Mansfield_Park.txt", 60000, 6000),
    ("prose/gutenberg_en_authorship/Charles_Dickens/A_Tale_of_Two_Cities.txt", 60000, 6000),
]

# The x86 primer: (path, offset, bytes), None for the whole file.
X86_PIECES = [
    ("misc/elf_x86_64_debian/xz-utils/usr/bin/xz", 0, None),
]


def piece(root, path, offset, length):
    with open(os.path.join(root, path), "rb") as f:
        data = f.read()
    if length is None:
        return data[offset:]
    if offset:
        # Start after a line break, end at one.
        offset = data.index(b"\n", offset) + 1
    chunk = data[offset:offset + length]
    # At a line break, or a space where a paragraph is one long line.
    cut = chunk.rfind(b"\n") if len(chunk) < length or b"\n" in chunk else -1
    if cut < 0:
        cut = chunk.rfind(b" ")
    if cut < 0:
        sys.exit(f"{path}: no line break or space in the slice")
    return chunk[:cut + 1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", help="the training corpus folder (with the *.tar.xz)")
    ap.add_argument("out", help="where to write the primer")
    ap.add_argument("--unpacked", help="an already unpacked corpus folder")
    ap.add_argument("--version", type=int, choices=(7, 13), default=13,
                    help="the format version whose primer to build (7: versions 7-12's)")
    ap.add_argument("--scale", type=float,
                    help="scale the data, code and markup pieces' lengths (default: 3, version 7's 1)")
    ap.add_argument("--prose-scale", type=float,
                    help="scale the prose pieces' lengths (default: 5, version 7's 1)")
    ap.add_argument("--x86", action="store_true", help="build the x86 primer")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.unpacked
        if root is None:
            root = tmp
            for name in sorted(os.listdir(args.corpus)):
                if name.endswith(".tar.xz"):
                    subprocess.run(["tar", "-xJf", os.path.join(args.corpus, name), "-C", tmp],
                                   check=True)
        v13 = args.version == 13
        scale = args.scale if args.scale is not None else 3.0 if v13 else 1.0
        prose_scale = args.prose_scale if args.prose_scale is not None else 5.0 if v13 else 1.0
        pieces = PIECES
        if v13:
            first_prose = next(i for i, p in enumerate(PIECES) if p[0].startswith("prose/"))
            pieces = PIECES[:first_prose] + V13_PROSE + PIECES[first_prose:]
        out = b""
        for path, offset, length in X86_PIECES if args.x86 else pieces:
            if length is not None:
                length = int(length * (prose_scale if path.startswith("prose/") else scale))
            p = piece(root, path, offset, length)
            print(f"{len(p):6d}  {path}")
            out += p
    with open(args.out, "wb") as f:
        f.write(out)
    print(f"{len(out)} bytes, sha256 {hashlib.sha256(out).hexdigest()}")


if __name__ == "__main__":
    main()
