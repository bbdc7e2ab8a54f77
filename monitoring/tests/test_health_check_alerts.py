"""The Prometheus path of health-check alerting, for real: Prometheus scrapes `health-check serve`
with the shipped rules (the live derived copy: for: and windows shortened, test_live checks
nothing else differs), Alertmanager routes the health-check alerts to the test's webhook. The
probed target stops: exactly one firing AbnStackTargetDown notification with its target label
arrives; it starts again: the alert resolves."""

from __future__ import annotations

import time

from stack import Stack, wait_until

NOTIFY_TIMEOUT = 60


def test_a_stopped_target_notifies_once_through_alertmanager_then_resolves(stack: Stack, report: list[str]) -> None:
    wait_until("probed up in Prometheus",
               lambda: stack.query('healthcheck_target_up{target="probed"} == 1'), timeout=30)
    wait_until("health-check's rule sees the target up (no alert pending or firing)",
               lambda: not stack.query('ALERTS{alertname="AbnStackTargetDown"}'), timeout=30)
    assert not stack.webhook.alerts("AbnStackTargetDown"), "a notification before the target stopped"

    started = time.monotonic()
    stack.probed.kill()
    try:
        firing = wait_until("a firing AbnStackTargetDown notification at the webhook",
                            lambda: stack.webhook.alerts("AbnStackTargetDown", "firing"), timeout=NOTIFY_TIMEOUT)
        fired = time.monotonic() - started
        alert = firing[0]
        assert alert["labels"]["target"] == "probed" and alert["labels"]["severity"] == "critical", alert
        assert alert["annotations"]["runbook_url"].endswith("#abnstacktargetdown"), alert
    finally:
        stopped_at = time.monotonic()
        stack.probed.start()
    resolved = wait_until("the resolved notification at the webhook",
                          lambda: stack.webhook.alerts("AbnStackTargetDown", "resolved"), timeout=NOTIFY_TIMEOUT)
    assert resolved[0]["labels"]["target"] == "probed"
    # One outage, one firing notification (Alertmanager's repeat_interval is 1 h here).
    assert len(stack.webhook.alerts("AbnStackTargetDown", "firing")) == 1, stack.webhook.payloads
    assert len(resolved) == 1, stack.webhook.payloads
    others = {a["labels"]["alertname"] for p in stack.webhook.payloads for a in p["alerts"]} - {"AbnStackTargetDown"}
    assert not others, f"other health-check alerts reached the webhook: {others}"
    report.append(f"- health-check target stopped: one AbnStackTargetDown notification (target=probed) reached the "
                  f"webhook through Alertmanager after {fired:.0f}s, resolved {time.monotonic() - stopped_at:.0f}s "
                  f"after the restart")
