"""Checks a data-api LOG_DIR after a benchmark: every line of every segment is a whole record,
ids are unique. Prints `records=N segments=M`; exits 1 on any bad line."""
import json
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1])
name = re.compile(r"^segment-\d{20}\.jsonl$")
records = segments = 0
ids = set()
for path in sorted(root.rglob("segment-*.jsonl")):
    if not name.match(path.name):
        continue
    segments += 1
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        sys.exit(f"{path}: ends mid-line")
    for n, line in enumerate(data.splitlines(), 1):
        record = json.loads(line)
        if set(record) != {"id", "ts", "level", "message", "instance"}:
            sys.exit(f"{path}:{n}: not a record")
        ids.add(record["id"])
        records += 1
if len(ids) != records:
    sys.exit(f"duplicate ids: {records - len(ids)}")
print(f"records={records} segments={segments}")
