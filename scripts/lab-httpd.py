#!/usr/bin/env python3
"""Tiny HTTP server for the lbd lab real servers.

GET / (and any other path) answers "<name>\\n" with the header
"X-Real-Server: <name>".  HTTP/1.1 with keep-alive (Content-Length is always
set).  Threaded, bound to 0.0.0.0 by default (--bind :: for IPv6: an IPv6-only
socket, beside an IPv4 server on the same port), request logging off.

With --log-file, one line per request is appended to that file:
    <peer address> <peer port> <method> <path>
so tests can check which client address the server saw (NAT keeps the
client's address; the peer is the client, not the director).
"""

import argparse
import http.server
import os
import signal
import socket
import sys
import threading


def make_handler(name, log=None):
    body = (name + "\n").encode()
    log_lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "lbd-lab-httpd"

        def version_string(self):
            return self.server_version

        def _log_peer(self):
            if log is None:
                return
            line = "%s %d %s %s\n" % (
                self.client_address[0], self.client_address[1], self.command, self.path)
            with log_lock:
                log.write(line)
                log.flush()

        def _reply(self, send_body):
            self._log_peer()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Real-Server", name)
            self.end_headers()
            if send_body:
                self.wfile.write(body)

        def do_GET(self):
            self._reply(True)

        def do_HEAD(self):
            self._reply(False)

        def log_message(self, format, *args):  # noqa: A002 - stdlib signature
            pass

    return Handler


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class Server6(Server):
    """IPv6 only: the IPv4 server of the same port keeps IPv4."""
    address_family = socket.AF_INET6

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        super().server_bind()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", required=True, help="server name returned in the body")
    ap.add_argument("--port", type=int, default=80)
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--pid-file", help="write our pid here once the socket is bound")
    ap.add_argument("--log-file", help="append one line per request (peer address)")
    args = ap.parse_args()

    log = open(args.log_file, "a", buffering=1) if args.log_file else None
    cls = Server6 if ":" in args.bind else Server
    httpd = cls((args.bind, args.port), make_handler(args.name, log))
    if args.pid_file:
        tmp = args.pid_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % os.getpid())
        os.replace(tmp, args.pid_file)

    def stop(_signum, _frame):
        # Unwinds serve_forever(); the finally clause closes the socket.
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()


if __name__ == "__main__":
    main()
