"""schemathesis hooks for scripts/check-security.sh (loaded through SCHEMATHESIS_HOOKS).

The log streams answer JSON Lines (`application/x-ndjson`), which schemathesis cannot read by
itself: it would skip their validation. This deserializer turns a stream into the list of its
lines, which the documents describe as an array of their named line schema, so
`response_schema_conformance` checks every line.
"""

import json

import schemathesis


@schemathesis.deserializer("application/x-ndjson")
def json_lines(_ctx, response):
    text = response.content.decode("utf-8")
    if text and not text.endswith("\n"):
        raise ValueError("the stream does not end with a newline: its last line is cut short")
    lines = []
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise ValueError(f"line {number} is not JSON: {err}") from err
    return lines
