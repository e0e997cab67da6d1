"""stdio <-> unix socket relay: what an outside agent spawns as its "stdio MCP server".

Run as ``python -I -S _relay.py SOCKET``: standard library only, so it starts in a few
milliseconds. Bytes from stdin go to the socket and bytes from the socket go to stdout,
unchanged; the MCP server at the other end (a dialogue's tool server in the evaluation
process, or a pre-started stdio pool worker) speaks newline-delimited JSON-RPC, exactly
as a stdio server would. It exits when the server closes the socket; closing stdin
half-closes the socket, which ends the server's session.

Deliberately not imported by anything: it is a script, run by path.
"""

import os
import socket
import sys
import threading


def _upstream(sock: socket.socket) -> None:
    try:
        while chunk := os.read(0, 65536):
            sock.sendall(chunk)
    except OSError:
        pass
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: python -I -S _relay.py SOCKET\n")
        return 2
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(argv[0])
    except OSError as exc:
        sys.stderr.write(f"dialogsim relay: cannot connect to the tool server at {argv[0]}: {exc.strerror or exc}\n")
        return 1
    threading.Thread(target=_upstream, args=(sock,), daemon=True).start()
    try:
        while chunk := sock.recv(65536):
            view = memoryview(chunk)
            while view:
                view = view[os.write(1, view) :]
    except OSError:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
