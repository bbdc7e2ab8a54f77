"""The Prometheus path of health-check alerting, for real: Prometheus scrapes `health-check serve`
with the shipped rules (the live derived copy: for: and windows shortened, test_live checks
nothing else differs), Alertmanager routes the health-check alerts to the test's webhook. The
probed target stops: exactly one firing AbnStackTargetDown notification with its target label
arrives; it starts again: the alert resolves."""

from __future__ import annotations

import datetime
import time

from stack import Stack, wait_until

NOTIFY_TIMEOUT = 60


def test_a_stopped_target_notifies_once_through_alertmanager_then_resolves(stack: Stack, report: list[str]) -> None:
    wait_until("probed up in Prometheus",
               lambda: stack.query('healthcheck_target_up{target="probed"} == 1'), timeout=30)
    wait_until("health-check's rule sees the target up (no alert pending or firing)",
               lambda: not stack.query('ALERTS{alertname="AbnStackTargetDown"}'), timeout=30)
    assert not stack.webhook.alerts("AbnStackTargetDown"), "a notification before the target stopped"

    began = datetime.datetime.now(datetime.timezone.utc)
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
    # Alerts that began during this test. A loaded machine may scrape health-check for the first
    # time after the live rules' 2 s `for:`, so an AbnStackHealthCheckAbsent from the stack's start
    # (before this test) is that rule working, not a side effect of the stopped target.
    others = {a["labels"]["alertname"] for p in stack.webhook.payloads for a in p["alerts"]
              if datetime.datetime.fromisoformat(a["startsAt"].replace("Z", "+00:00")) >= began}
    others -= {"AbnStackTargetDown"}
    assert not others, f"other health-check alerts reached the webhook: {others}"
    report.append(f"- health-check target stopped: one AbnStackTargetDown notification (target=probed) reached the "
                  f"webhook through Alertmanager after {fired:.0f}s, resolved {time.monotonic() - stopped_at:.0f}s "
                  f"after the restart")


def test_a_down_service_pages_once_its_target_down_is_inhibited(stack: Stack, report: list[str]) -> None:
    """monitoring/alertmanager/inhibit-rules.yaml in the real Alertmanager: with AbnStackServiceDown
    firing for a service, that service's AbnStackTargetDown is suppressed and never reaches the
    webhook, while a TargetDown of another service in the same namespace still does. The alerts
    carry the labels the shipped rules give them (promtool tests prove those); they are posted as
    Prometheus posts them, so no service has to stay down for the rules' `for:`."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ends = (now + datetime.timedelta(minutes=5)).isoformat()

    def alert(name: str, ends_at: str = ends, **labels: str) -> dict:
        return {"labels": {"alertname": name, "namespace": "abn-stack-inhibit", "severity": "critical", **labels},
                "startsAt": now.isoformat(), "endsAt": ends_at}

    cause = alert("AbnStackServiceDown", job="backend-api", instance="10.0.0.9:5000", service="backend-api")
    symptom = alert("AbnStackTargetDown", target="backend-api", service="backend-api")
    control = alert("AbnStackTargetDown", target="data-api", service="data-api")
    # The cause first, as Prometheus would have it by the time the symptom's `for:` has passed.
    stack.post_alerts([cause])
    wait_until("AbnStackServiceDown active in Alertmanager",
               lambda: any(a["status"]["state"] == "active" for a in stack.alertmanager_alerts("AbnStackServiceDown")),
               timeout=15)
    stack.post_alerts([symptom, control])
    try:
        def states() -> dict[str, dict]:
            return {a["labels"]["target"]: a["status"] for a in stack.alertmanager_alerts("AbnStackTargetDown")
                    if a["labels"]["namespace"] == "abn-stack-inhibit"}
        held = wait_until("backend-api's AbnStackTargetDown suppressed, data-api's active",
                          lambda: (s := states()).get("backend-api", {}).get("state") == "suppressed"
                          and s.get("data-api", {}).get("state") == "active" and s, timeout=15)
        assert held["backend-api"]["inhibitedBy"], held
        wait_until("data-api's AbnStackTargetDown at the webhook",
                   lambda: [a for a in stack.webhook.alerts("AbnStackTargetDown", "firing")
                            if a["labels"]["target"] == "data-api"], timeout=NOTIFY_TIMEOUT)
        # Both were posted together; data-api's group has been notified, backend-api's not.
        def leaked() -> list[dict]:
            return [a for a in stack.webhook.alerts("AbnStackTargetDown")
                    if a["labels"]["namespace"] == "abn-stack-inhibit" and a["labels"]["target"] == "backend-api"]
        assert not leaked(), leaked()
        # The cause ends: the symptom is no longer held, and is notified (the route does reach it).
        stack.post_alerts([{**cause, "endsAt": datetime.datetime.now(datetime.timezone.utc).isoformat()}])
        released = wait_until("backend-api's AbnStackTargetDown at the webhook once the ServiceDown ended",
                              leaked, timeout=NOTIFY_TIMEOUT)
        assert [a["status"] for a in released] == ["firing"], released
    finally:
        past = datetime.datetime.now(datetime.timezone.utc).isoformat()
        stack.post_alerts([{**a, "endsAt": past} for a in (cause, symptom, control)])
    report.append("- inhibit rule: with AbnStackServiceDown firing for backend-api, its AbnStackTargetDown was "
                  "suppressed in Alertmanager and not notified (data-api's was); notified once the ServiceDown ended")
