"""The live stack, started once for the session (only by the tests that ask for it), and the
report file the area prints at the end: each panel's series count, each fault's alerts."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import Load  # noqa: E402  (sys.path above)
from stack import REPO_ROOT, RULES, Stack, wait_until  # noqa: E402

REPORT = REPO_ROOT / "build" / "monitoring" / "report.md"


@pytest.fixture(scope="session")
def report() -> Iterator[list[str]]:
    lines: list[str] = []
    yield lines
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    shipped = hashlib.sha256(RULES.read_bytes()).hexdigest()
    live = Stack(tmp_path_factory.mktemp("live"))
    load = Load(live)
    try:
        live.start()
        load.start()
        # Enough scrapes for every rate window of the panels and rules to hold samples.
        wait_until("four scrape targets up",
                   lambda: len(live.query('up{namespace="abn-stack-live"} == 1')) == 4, timeout=60)
        wait_until("a rate over the live window", lambda: live.query(
            'sum(rate(data_api_records_written_total[15s])) > 0'), timeout=60)
        yield live
    finally:
        load.stop()
        live.stop()
    # The test loaded a derived copy; the shipped file must be what it was.
    assert hashlib.sha256(RULES.read_bytes()).hexdigest() == shipped, f"{RULES} changed during the live test"
