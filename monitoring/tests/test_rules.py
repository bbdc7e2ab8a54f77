"""Every alert is proven: each has a promtool unit test that makes it fire (with its labels and
annotations), and the README has its runbook line. Which alerts are also fired live is
test_live.FAULTS."""

from __future__ import annotations

from pathlib import Path

import yaml

from stack import REPO_ROOT, RULES

UNIT_TESTS = RULES.parent / "tests"
README = REPO_ROOT / "monitoring" / "README.md"


def alerts() -> list[str]:
    return [rule["alert"] for group in yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
            for rule in group["rules"] if "alert" in rule]


def fired_in_unit_tests() -> set[str]:
    fired = set()
    for path in sorted(UNIT_TESTS.glob("*.yaml")):
        for test in yaml.safe_load(Path(path).read_text(encoding="utf-8"))["tests"]:
            for case in test.get("alert_rule_test", []):
                if case.get("exp_alerts"):
                    fired.add(case["alertname"])
    return fired


def test_every_alert_has_a_unit_test_that_fires_it() -> None:
    missing = set(alerts()) - fired_in_unit_tests()
    assert not missing, f"alerts no unit test makes fire: {sorted(missing)}"


def test_every_alert_has_a_runbook_line() -> None:
    readme = README.read_text(encoding="utf-8")
    missing = [name for name in alerts() if f"### {name}" not in readme]
    assert not missing, f"no runbook heading in monitoring/README.md for {missing}"
