#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# qb-embed.py IN OUT NAME — writes OUT, a C header declaring the text of IN
# as `static const char NAME[]` (OpenCL kernel sources, built into core).
import sys

src, out, name = sys.argv[1:4]
with open(src, encoding="utf-8") as f:
    text = f.read()
lines = ["/* generated from %s by qb-embed.py; do not edit */" % src.split("/")[-1],
         "static const char %s[] =" % name]
for line in text.splitlines():
    esc = line.replace("\\", "\\\\").replace('"', '\\"')
    lines.append('  "%s\\n"' % esc)
lines.append("  ;")
with open(out, "w", encoding="utf-8") as f:
    f.write("\n".join(lines) + "\n")
