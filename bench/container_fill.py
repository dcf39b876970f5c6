"""Fill one container database with N object rows, with Swift's own
ContainerBroker (Swift's schema, Swift's triggers), for bench/container.sh.

    python container_fill.py DEVICES_ROOT DEVICE ACCOUNT CONTAINER N

Rows are named dNNN/oNNNNNNN (1,000 "directories"), 1 KiB each, in
batches of 10,000 per transaction.
"""
import os
import sys
import time

from swift.common.utils import hash_path, Timestamp
from swift.container.backend import ContainerBroker


def main():
    root, dev, account, container, n = sys.argv[1:6]
    n = int(n)
    h = hash_path(account, container)
    path = os.path.join(root, dev, "containers", "0", h[-3:], h, h + ".db")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    broker = ContainerBroker(path, account=account, container=container)
    now = Timestamp.now()
    broker.initialize(now.internal, 0)
    t0 = time.time()
    ts = now.internal
    dirs = 1000
    per_dir = max(1, n // dirs)
    with broker.get() as conn:
        batch = []
        for i in range(n):
            name = "d%03d/o%07d" % (i // per_dir % dirs, i)
            batch.append((name, ts, 1024, "application/octet-stream", "d41d8cd98f00b204e9800998ecf8427e", 0, 0))
            if len(batch) == 10000:
                conn.executemany(
                    "INSERT INTO object (name, created_at, size, content_type, etag, deleted, storage_policy_index)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)", batch)
                conn.commit()
                batch = []
        if batch:
            conn.executemany(
                "INSERT INTO object (name, created_at, size, content_type, etag, deleted, storage_policy_index)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)", batch)
            conn.commit()
    info = broker.get_info()
    print("filled %s with %d rows in %.1fs" % (path, info["object_count"], time.time() - t0))


if __name__ == "__main__":
    main()
