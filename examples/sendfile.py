"""Send a 10 MiB file to a loopback TCP receiver with os.sendfile (the zero-copy path).

Run it traced:  cargo xtask run -- trace --json -- python3 examples/sendfile.py
The receiver (a thread of this process) checks that every byte arrived.
"""
import os
import socket
import sys
import tempfile
import threading

SIZE = int(sys.argv[1]) if len(sys.argv) > 1 else 10 * 1024 * 1024

# Not /tmp: where /tmp is tmpfs, reads bypass the page-cache read path.
fd, path = tempfile.mkstemp(dir=os.getcwd(), prefix=".sendfile-")
try:
    os.write(fd, os.urandom(SIZE))
    os.close(fd)

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    received = [0]

    def receive():
        conn, _ = srv.accept()
        while chunk := conn.recv(1 << 20):
            received[0] += len(chunk)

    receiver = threading.Thread(target=receive)
    receiver.start()
    sock = socket.create_connection(srv.getsockname())
    with open(path, "rb") as f:
        offset = 0
        while offset < SIZE:
            offset += os.sendfile(sock.fileno(), f.fileno(), offset, SIZE - offset)
    sock.close()
    receiver.join()
finally:
    os.unlink(path)

if received[0] != SIZE:
    sys.exit(f"lost bytes: sent {SIZE}, received {received[0]}")
print(f"sent {SIZE} bytes with sendfile; the receiver got them all", file=sys.stderr)
