"""tools/wait-secret-reload, the verify step's bounded wait for a key change, against the real
backend-api binary (BACKEND_API_BIN, built by scripts/check-ansible.sh): it times out (exit 1,
naming the target) while the key file is unchanged, and returns 0 once a kubelet-style swap of
the mounted file (a new timestamped folder, the `..data` link renamed over) is reloaded."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "support"))
from service_process import ServiceProcess  # noqa: E402

TOOL = Path(__file__).resolve().parents[1] / "tools" / "wait-secret-reload"


def swap(volume: Path, generation: int, key: str) -> None:
    """The kubelet's update of a Secret volume: `..<stamp>/` written, `..data` swapped to it."""
    folder = volume / f"..2026_01_01_00_00_0{generation}.{generation}"
    folder.mkdir()
    (folder / "integration-key").write_text(key)
    tmp = volume / "..data_tmp"
    tmp.symlink_to(folder.name)
    tmp.rename(volume / "..data")
    if not (volume / "integration-key").is_symlink():
        (volume / "integration-key").symlink_to("..data/integration-key")


@pytest.fixture
def backend(tmp_path: Path):
    binary = os.environ.get("BACKEND_API_BIN")
    assert binary, "BACKEND_API_BIN is not set: scripts/check-ansible.sh builds backend-api and sets it"
    volume = tmp_path / "integration-key"
    volume.mkdir()
    swap(volume, 1, "old-key-5d1c9a")
    service = ServiceProcess([binary], inherit_env=False, log_path=tmp_path / "backend-api.log", env={
        "PATH": os.environ.get("PATH", ""),
        "EXTERNAL_LOGS_URL": "http://127.0.0.1:9/v1/logs",
        "EXTERNAL_INTEGRATION_KEY_FILE": str(volume / "integration-key")}).start()
    yield service.url("/metrics"), volume
    service.stop()


def wait(url: str, since: float, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), "--secret", "external_integration_key",
                           "--since", str(since), "--timeout", str(timeout), "--interval", "0.5",
                           "--url", url], capture_output=True, text=True, timeout=timeout + 30)


def test_waits_for_the_reload_and_times_out_without_one(backend) -> None:
    url, volume = backend
    # The start's load is before this moment: not yet reloaded.
    time.sleep(1.1)
    changed_at = time.time()
    early = wait(url, changed_at, timeout=2)
    assert early.returncode == 1, early
    assert f"{url}: external_integration_key not reloaded within 2 s" in early.stderr
    assert "failed reloads 0" in early.stderr

    swap(volume, 2, "new-key-8e2f47")
    done = wait(url, changed_at, timeout=60)
    assert done.returncode == 0, done
    assert "external_integration_key loaded at" in done.stdout
    assert "old-key" not in done.stdout + done.stderr and "new-key" not in done.stdout + done.stderr


def test_usage_errors_exit_2() -> None:
    for argv in ([], ["--secret", "s", "--since", "1", "--timeout", "5"],
                 ["--secret", "s", "--since", "1", "--timeout", "5", "--url", "http://x/", "--context", "c"],
                 ["--secret", "s", "--since", "1", "--timeout", "0", "--url", "http://x/"]):
        result = subprocess.run([sys.executable, str(TOOL), *argv], capture_output=True, timeout=30)
        assert result.returncode == 2, (argv, result)
