"""Databases for bench/db-replication.sh, made with Swift's own brokers
(Swift's schema and triggers), on two devices of a two-replica cluster.

    db_fill.py container SWIFT_DIR DEV_A DEV_B ROWS BEHIND
    db_fill.py account SWIFT_DIR DEV_A DEV_B CONTAINERS BEHIND
    db_fill.py many SWIFT_DIR DEV_A DEV_B COUNT
    db_fill.py path SWIFT_DIR DEV container|account    → the big one's file

`container`: AUTH_bench/big with ROWS object rows on DEV_A (and the
account AUTH_bench on both devices); DEV_B has the
same database as it was BEHIND rows earlier (another id), and both record
that they were in sync then, as two replicas that replicated before one
of them went down. `account`: the same for AUTH_bench with CONTAINERS
container rows. `many`: COUNT containers AUTH_bench/c<N> of one row each,
alike on both devices (each its own id): an idle pass.
"""
import os
import shutil
import sqlite3
import sys
import uuid

from swift.account.backend import AccountBroker
from swift.common.ring import Ring
from swift.common.utils import Timestamp, hash_path
from swift.container.backend import ContainerBroker

BATCH = 10000


def db_path(swift_dir, dev, kind, account, container=None):
    ring = Ring(swift_dir, ring_name=kind)
    part = ring.get_part(account, container)
    h = hash_path(account, container) if container else hash_path(account)
    return os.path.join(dev, kind + 's', str(part), h[-3:], h, h + '.db')


def object_rows(start, end, ts):
    for i in range(start, end):
        yield ('d%03d/o%07d' % (i % 1000, i), ts, 1024, 'application/octet-stream',
               'd41d8cd98f00b204e9800998ecf8427e', 0, 0)


def container_rows(start, end, ts):
    for i in range(start, end):
        yield ('c%07d' % i, ts, '0', 10, 10240, 0, 0)


INSERT = {
    'container': 'INSERT INTO object (name, created_at, size, content_type, etag, deleted, '
                 'storage_policy_index) VALUES (?, ?, ?, ?, ?, ?, ?)',
    'account': 'INSERT INTO container (name, put_timestamp, delete_timestamp, object_count, '
               'bytes_used, deleted, storage_policy_index) VALUES (?, ?, ?, ?, ?, ?, ?)',
}
STAT = {'container': 'container_stat', 'account': 'account_stat'}
TABLE = {'container': 'object', 'account': 'container'}


def fill(broker, kind, start, end):
    ts = Timestamp.now().internal
    rows = object_rows if kind == 'container' else container_rows
    with broker.get() as conn:
        batch = []
        for r in rows(start, end, ts):
            batch.append(r)
            if len(batch) == BATCH:
                conn.executemany(INSERT[kind], batch)
                conn.commit()
                batch = []
        if batch:
            conn.executemany(INSERT[kind], batch)
            conn.commit()


def new_broker(kind, path, account, container):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if kind == 'container':
        b = ContainerBroker(path, account=account, container=container)
        b.initialize(Timestamp.now().internal, 0)
    else:
        b = AccountBroker(path, account=account)
        b.initialize(Timestamp.now().internal)
    return b


def twin(kind, a_path, b_path, dev_b):
    """Copy A to B under a new id; both record the other in sync at the
    current max row."""
    os.makedirs(os.path.dirname(b_path), exist_ok=True)
    shutil.copyfile(a_path, b_path)
    a, b = sqlite3.connect(a_path), sqlite3.connect(b_path)
    b.execute('UPDATE %s SET id = ?' % STAT[kind], ('%s-%s' % (uuid.uuid4(), os.path.basename(dev_b)),))
    b.commit()
    (a_id,), (b_id,) = [c.execute('SELECT id FROM %s' % STAT[kind]).fetchone() for c in (a, b)]
    (point,) = a.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (TABLE[kind],)).fetchone() or (-1,)
    for conn, other in ((a, b_id), (b, a_id)):
        for table in ('incoming_sync', 'outgoing_sync'):
            conn.execute('INSERT OR REPLACE INTO %s (remote_id, sync_point) VALUES (?, ?)' % table, (other, point))
        if kind == 'container':
            # As the container updater left them: nothing new to report.
            conn.execute('UPDATE container_stat SET reported_put_timestamp = put_timestamp, '
                         'reported_delete_timestamp = delete_timestamp, reported_object_count = object_count, '
                         'reported_bytes_used = bytes_used')
        conn.commit()
    a.close()
    b.close()


def account_on(swift_dir, *devs):
    """The account the containers are in, on each device (a container
    updater quarantines a container whose account no replica has)."""
    for dev in devs:
        path = db_path(swift_dir, dev, 'account', 'AUTH_bench')
        if not os.path.exists(path):
            new_broker('account', path, 'AUTH_bench', None)


def big(kind, swift_dir, dev_a, dev_b, total, behind):
    container = 'big' if kind == 'container' else None
    if kind == 'container':
        account_on(swift_dir, dev_a, dev_b)
    a_path = db_path(swift_dir, dev_a, kind, 'AUTH_bench', container)
    b_path = db_path(swift_dir, dev_b, kind, 'AUTH_bench', container)
    broker = new_broker(kind, a_path, 'AUTH_bench', container)
    fill(broker, kind, 0, total - behind)
    twin(kind, a_path, b_path, dev_b)
    fill(broker, kind, total - behind, total)
    print('%s: %d rows on A, %d on B' % (a_path, total, total - behind))


def many(swift_dir, dev_a, dev_b, count):
    account_on(swift_dir, dev_a, dev_b)
    for i in range(count):
        name = 'c%07d' % i
        a_path = db_path(swift_dir, dev_a, 'container', 'AUTH_bench', name)
        broker = new_broker('container', a_path, 'AUTH_bench', name)
        broker.put_object('o', Timestamp.now().internal, 1, 'text/plain', 'd41d8cd98f00b204e9800998ecf8427e')
        broker.get_info()  # merges the pending row
        twin('container', a_path, db_path(swift_dir, dev_b, 'container', 'AUTH_bench', name), dev_b)
    print('%d containers on both devices' % count)


def main():
    cmd = sys.argv[1]
    if cmd in ('container', 'account'):
        big(cmd, sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
    elif cmd == 'many':
        many(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif cmd == 'path':
        kind = sys.argv[4]
        print(db_path(sys.argv[2], sys.argv[3], kind, 'AUTH_bench', 'big' if kind == 'container' else None))
    else:
        sys.exit('unknown command ' + cmd)


if __name__ == '__main__':
    main()
