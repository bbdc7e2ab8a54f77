"""Values documentation and schema from one source, for every abn-stack chart.

    python3 deployment/helm/tools/values_docs.py           # write the README tables and schemas
    python3 deployment/helm/tools/values_docs.py --check   # CI: exit 1 when a file would change

For each chart it:
1. copies the shared schema (abn-common/values.schema.shared.json: definitions, the chart-level
   keys, the pod template's keys of every workload) into the chart's values.schema.json;
2. reads values.yaml with its `# --` comments (the helm-docs convention: the comment right above a
   key documents it, `#` lines right after continue it) and checks that every value is documented
   (itself or a documented parent map), typed by the schema, and that the schema has no key
   values.yaml lacks;
3. writes the README's table between `<!-- values:begin -->` and `<!-- values:end -->`.

helm-docs is a Go binary not installable here; this is the part of it the charts need. Standard
library and PyYAML only.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

HELM_DIR = Path(__file__).resolve().parents[1]
SHARED = HELM_DIR / "abn-common" / "values.schema.shared.json"
#: chart -> where its workloads' values sit (a path of keys; () is the chart's root).
WORKLOADS: dict[str, list[tuple[str, ...]]] = {
    "backend-api": [()],
    "data-api": [()],
    "abn-stack": [("healthCheck",), ("logProvider",)],
}
#: Values of dependencies, documented in their own chart.
SUBCHART_KEYS = {"backend-api", "data-api", "abn-common"}
BEGIN, END = "<!-- values:begin -->", "<!-- values:end -->"
KEY = re.compile(r'^(\s*)("[^"]+"|[A-Za-z0-9_.-]+):(?:\s|$)')
DOC = re.compile(r"^(\s*)# --\s?(.*)$")
MORE = re.compile(r"^(\s*)#\s?(.*)$")


class Problem(Exception):
    pass


def documented(values_text: str) -> dict[tuple[str, ...], str]:
    """{key path: description} from the `# --` comments of a values.yaml."""
    docs: dict[tuple[str, ...], str] = {}
    stack: list[tuple[int, str]] = []
    pending: list[str] | None = None
    for line in values_text.splitlines():
        if (m := DOC.match(line)):
            pending = [m.group(2).strip()]
            continue
        if pending is not None and (m := MORE.match(line)) and not line.strip().startswith("# --"):
            pending.append(m.group(2).strip())
            continue
        m = KEY.match(line)
        if not m:
            if not line.strip() or line.strip().startswith("#"):
                pending = None
            continue
        indent, key = len(m.group(1)), m.group(2).strip('"')
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = tuple(k for _, k in stack) + (key,)
        if pending is not None:
            docs[path] = " ".join(p for p in pending if p)
        pending = None
        stack.append((indent, key))
    return docs


def leaves(value: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if isinstance(value, dict) and value:
        found = []
        for key, child in value.items():
            found += leaves(child, path + (key,))
        return found
    return [path]


def lookup(values: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        values = values[key]
    return values


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = lookup(schema, tuple(node["$ref"].removeprefix("#/").split("/")))
    return node


def schema_node(schema: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    node = schema
    for key in path:
        node = resolve(schema, node).get("properties", {}).get(key)
        if node is None:
            return None
    return node


def type_of(schema: dict[str, Any], node: dict[str, Any]) -> str:
    if "$ref" in node:
        target = resolve(schema, node)
        return type_of(schema, target) if "$ref" not in target else node["$ref"].rsplit("/", 1)[-1]
    if "type" in node:
        return " or ".join(node["type"]) if isinstance(node["type"], list) else node["type"]
    for combinator in ("oneOf", "anyOf"):
        if combinator in node:
            return " or ".join(dict.fromkeys(type_of(schema, n) for n in node[combinator]))
    if "enum" in node:
        return " or ".join(json.dumps(v) for v in node["enum"])
    return ""


def schema_paths(node: dict[str, Any], path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every key the schema spells out under `properties` (not through $ref definitions)."""
    found = []
    for key, child in (node.get("properties") or {}).items():
        found.append(path + (key,))
        found += schema_paths(child, path + (key,))
    return found


def with_shared(schema: dict[str, Any], chart: str, shared: dict[str, Any]) -> dict[str, Any]:
    schema = copy.deepcopy(schema)
    schema.setdefault("definitions", {}).update(copy.deepcopy(shared["definitions"]))
    schema.setdefault("properties", {}).update(copy.deepcopy(shared["chartProperties"]))
    for where in WORKLOADS[chart]:
        node = schema
        for key in where:
            node = node["properties"][key]
        node.setdefault("properties", {}).update(copy.deepcopy(shared["workloadProperties"]))
    return schema


def check(chart: str, values_text: str, schema: dict[str, Any]) -> list[str]:
    values = yaml.safe_load(values_text) or {}
    docs = documented(values_text)
    problems = []
    for leaf in leaves(values):
        if leaf[0] in SUBCHART_KEYS:
            continue
        if not any(leaf[:n] in docs for n in range(1, len(leaf) + 1)):
            problems.append(f"{chart}: {'.'.join(leaf)} has no `# --` comment (nor has a map above it)")
    for path in docs:
        node = schema_node(schema, path)
        if node is None:
            problems.append(f"{chart}: {'.'.join(path)} is not in values.schema.json")
        elif not type_of(schema, node):
            problems.append(f"{chart}: {'.'.join(path)} has no type in values.schema.json")
    for path in schema_paths(schema):
        try:
            lookup(values, path)
        except (KeyError, TypeError):
            if path[0] not in SUBCHART_KEYS and not any(path[:n] in docs and path[:n] != path for n in range(1, len(path))):
                problems.append(f"{chart}: values.schema.json has {'.'.join(path)}, values.yaml has no such value")
    return problems


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def table(values_text: str, schema: dict[str, Any]) -> str:
    values = yaml.safe_load(values_text) or {}
    rows = ["| key | type | default | description |", "|---|---|---|---|"]
    for path, description in documented(values_text).items():
        node = schema_node(schema, path) or {}
        default = json.dumps(lookup(values, path), separators=(",", ":"))
        rows.append(f"| `{'.'.join(path)}` | {cell(type_of(schema, node))} | `{cell(default)}` | {cell(description)} |")
    return "\n".join(rows)


def with_table(readme: str, generated: str, chart: str) -> str:
    if BEGIN not in readme or END not in readme:
        raise Problem(f"{chart}/README.md: no {BEGIN} ... {END} markers for the values table")
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    note = "<!-- Generated from values.yaml by deployment/helm/tools/values_docs.py: edit the `# --` comments there, then run it. -->"
    return f"{head}{BEGIN}\n{note}\n\n{generated}\n\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a file is stale")
    parser.add_argument("--helm-dir", type=Path, default=HELM_DIR, help="the charts' folder (default: this repository's)")
    args = parser.parse_args(argv)
    helm_dir = args.helm_dir.resolve()
    shared = json.loads((helm_dir / SHARED.relative_to(HELM_DIR)).read_text())
    stale, problems = [], []
    for chart in WORKLOADS:
        chart_dir = helm_dir / chart
        values_text = (chart_dir / "values.yaml").read_text()
        schema_path, readme_path = chart_dir / "values.schema.json", chart_dir / "README.md"
        schema = with_shared(json.loads(schema_path.read_text()), chart, shared)
        problems += check(chart, values_text, schema)
        try:
            wanted = {schema_path: json.dumps(schema, indent=2) + "\n",
                      readme_path: with_table(readme_path.read_text(), table(values_text, schema), chart)}
        except Problem as problem:
            problems.append(str(problem))
            continue
        for path, text in wanted.items():
            if path.read_text() != text:
                stale.append(path.relative_to(helm_dir.parents[1]))
                if not args.check:
                    path.write_text(text)
    for problem in problems:
        print(f"values_docs: {problem}", file=sys.stderr)
    if stale:
        verb = "is stale" if args.check else "written"
        for path in stale:
            print(f"values_docs: {path} {verb}", file=sys.stderr)
        if args.check:
            print("values_docs: run python3 deployment/helm/tools/values_docs.py and commit the result", file=sys.stderr)
    return 1 if problems or (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
