"""A delaying TCP proxy: what `tc qdisc ... netem delay` would do on the provider's interface, for
a kernel without netem. Bytes the upstream (the provider) sends are held `delay` seconds before
they are forwarded, without limiting throughput (a delay line, not stop-and-wait); bytes towards
the upstream pass at once. The delay can be changed while connections are open (0: a plain
proxy), so a fault is switched on and off without reconnecting anyone.

Standard library only; threads (two a connection, one of them the delay line's writer).
"""

import collections
import socket
import threading
import time


class DelayProxy:
    def __init__(self, listen_host, upstream):
        self.upstream = upstream  # (host, port); may be changed for new connections
        self.delay = 0.0
        self._server = socket.create_server((listen_host, 0))
        self.port = self._server.getsockname()[1]
        self._closed = threading.Event()
        self._sockets = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._closed.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, src, dst, delayed):
        """Copies src to dst; when `delayed`, every chunk waits until its read time + delay."""
        line = collections.deque()
        ready = threading.Condition()
        done = []

        def writer():
            while True:
                with ready:
                    while not line and not done:
                        ready.wait()
                    if not line:
                        break
                    due, data = line.popleft()
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                try:
                    dst.sendall(data)
                except OSError:
                    break
            _shutdown(dst)

        if delayed:
            threading.Thread(target=writer, daemon=True).start()
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if delayed:
                    with ready:
                        line.append((time.monotonic() + self.delay, data))
                        ready.notify()
                else:
                    dst.sendall(data)
        except OSError:
            pass
        if delayed:
            with ready:
                done.append(True)
                ready.notify()
        else:
            _shutdown(dst)

    def close(self):
        self._closed.set()
        self._server.close()
        with self._lock:
            for s in self._sockets:
                s.close()


def _shutdown(sock):
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
