"""Groups `perf report --stdio --sort dso,symbol` lines (stdin) by where the time goes: the
kernel, libc's allocator or memmove, or the Rust crate a symbol belongs to. Prints the top 15."""
import collections
import re
import sys

groups = collections.Counter()
for line in sys.stdin:
    m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*)", line)
    if not m:
        continue
    pct, dso, kind, sym = float(m[1]), m[2], m[3], m[4].strip()
    if kind == "k":
        key = "kernel"
    elif dso.startswith("libc"):
        if re.search(r"malloc|free|_int_|consolidate", sym):
            key = "libc: malloc/free"
        elif "mem" in sym:
            key = "libc: memmove/memcmp"
        else:
            key = "libc: other"
    else:
        crate = re.match(r"<?([a-z_0-9]+)::", sym)
        key = "crate " + crate[1] if crate else "other: " + sym[:40]
    groups[key] += pct
for key, pct in groups.most_common(15):
    print(f"{pct:6.2f}%  {key}")
