"""A packet capture on the provider's interface during a download: the key must not be in it.

tcpdump (Debian) runs in the provider's network namespace (nsenter, as root) and writes every
packet to or from the provider's port while backend-api downloads through it. The capture is
searched with the secret-hygiene search (tests/security/secret_hygiene.py: the key as given,
URL-encoded, base64 and base64 of "Bearer <key>"). Over plain HTTP the key IS found: the
positive control, proving the capture saw the request; over TLS no form of it may be.
"""

import signal
import subprocess
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "security"))
from secret_hygiene import find_secrets  # noqa: E402
from service_process import eventually  # noqa: E402

PROVIDER_PORT = 5002


def capture_download(stack, provider, backend, lines=5_000):
    """Captures the provider's traffic during one download through `backend`; returns the
    places (secret_hygiene.find_secrets) where a form of the key is in the capture, and the
    capture's size."""
    pcap = stack.work / f"capture-{provider}.pcap"
    pid = stack.pid(provider)
    # -Z root: tcpdump would drop to its own user and could not write the test's folder.
    # --immediate-mode: packets reach tcpdump (and -U, the file) as they come, not a ring block
    # at a time, which a SIGINT would leave unwritten. -B: a 128 MiB buffer, so a loaded machine
    # does not make the kernel drop packets before tcpdump reads them (checked below).
    dump = subprocess.Popen(
        ["nsenter", "-t", str(pid), "-n", "tcpdump", "-i", "any", "--immediate-mode", "-U", "-s", "0",
         "-B", "131072", "-Z", "root",
         "-w", str(pcap), "tcp", "port", str(PROVIDER_PORT)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    heard = threading.Event()
    err = []

    def read_stderr():
        for line in dump.stderr:
            err.append(line)
            if "listening on" in line:
                heard.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        eventually(f"tcpdump listening in {provider}'s namespace",
                   lambda: heard.is_set() or dump.poll() is not None, bound=20)
        assert dump.poll() is None, f"tcpdump ended: {''.join(err)}"
        answer = stack.download(backend, lines, timeout=60)
        assert answer.status == 200 and answer.complete and answer.lines() == lines, (
            f"download through {backend} for the capture: {answer.status} {answer.error}")
        # The download's packets reach the file (a pcap header alone is 24 bytes).
        eventually(f"the capture on {provider} holds the download",
                   lambda: pcap.stat().st_size > len(answer.body), bound=20)
    finally:
        dump.send_signal(signal.SIGINT)
        try:
            dump.wait(20)
        except subprocess.TimeoutExpired:
            dump.kill()
            dump.wait(5)
    reader.join(10)
    dropped = [line for line in err if "dropped by kernel" in line]
    assert dropped and dropped[0].split()[0] == "0", (
        f"tcpdump on {provider} missed packets: {''.join(err)}")
    data = pcap.read_bytes()
    places = find_secrets([(f"the capture on {provider}", data)],
                          (("the integration key", stack.key),))
    return places, len(data), answer


def check_capture(stack):
    """Returns the two rows of the report; fails unless the plain control finds the key and the
    TLS capture does not."""
    plain, plain_size, _ = capture_download(stack, "log-provider-plain", "backend-plain")
    assert plain, ("the positive control failed: the key was not found in the plain-HTTP "
                   f"capture ({plain_size} bytes): the capture or its search is blind")
    tls, tls_size, answer = capture_download(stack, "log-provider", "backend-direct")
    assert not tls, f"the key travelled in a TLS capture: {tls}"
    return [
        f"plain HTTP (control): {plain_size} bytes captured, key found: {', '.join(plain)}",
        f"TLS: {tls_size} bytes captured during a {len(answer.body)} byte download (no packet "
        "missed), no form of the key found",
    ]
