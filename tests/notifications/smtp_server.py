"""A minimal local SMTP server for the mail tests: drops the first N connections, then accepts mail."""

from __future__ import annotations

import socket
import threading


class FlakySMTPServer(threading.Thread):
    def __init__(self, *, fail_first: int):
        super().__init__(daemon=True)
        self.fail_first = fail_first
        self.connections = 0
        self.messages: list[str] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            with conn:
                if self.connections <= self.fail_first:
                    continue  # hang up before the greeting: the client sees SMTPServerDisconnected
                self._session(conn)

    def _session(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        reader = conn.makefile("rb")
        conn.sendall(b"220 localhost ESMTP test\r\n")
        while line := reader.readline():
            command = line.decode().strip().upper()
            if command.startswith(("EHLO", "HELO")):
                conn.sendall(b"250 localhost\r\n")
            elif command == "DATA":
                conn.sendall(b"354 go ahead\r\n")
                body = []
                while (data := reader.readline()) not in (b".\r\n", b""):
                    body.append(data.decode())
                self.messages.append("".join(body))
                conn.sendall(b"250 queued\r\n")
            elif command == "QUIT":
                conn.sendall(b"221 bye\r\n")
                return
            else:
                conn.sendall(b"250 ok\r\n")

    def stop(self) -> None:
        self.stopped.set()
        self.join(2)
        self.sock.close()
