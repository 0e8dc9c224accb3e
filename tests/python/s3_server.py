#!/usr/bin/env python3
"""Moto's S3-compatible server for the storage tests, with each request handled alone.

Moto checks `If-None-Match: *` and then writes, without a lock, so under load two concurrent
create-if-absent writes to one key can both succeed (seen once in CI: a Delta commit lost
among four concurrent writers). Real S3, MinIO and GCS make that check atomic, and Delta's
commit protocol depends on it. Serialising requests gives moto the same guarantee without
changing anything else it does.

Usage: s3_server.py HOST PORT
"""
import os
import sys
import threading

from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("MOTO_PORT", str(port))
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serialised(environ, start_response):
        with lock:
            # Materialise the response inside the lock so the whole request is atomic.
            return list(app(environ, start_response))

    run_simple(host, port, serialised, threaded=True)


if __name__ == "__main__":
    main()
