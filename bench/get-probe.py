"""A client's view of one node: GET latency while something else happens.

    get-probe.py place SWIFT_DIR FROM_DEV TO_DEV COUNT    copy COUNT objects
    get-probe.py run SWIFT_DIR PORT DEV COUNT STOP_FILE   GET them until STOP_FILE
    get-probe.py path PORT PATH STOP_FILE                  GET one path until STOP_FILE

`place` copies the hash directories of the first COUNT objects the
replication benchmark loaded (names o0000000...) from one device to another
(xattrs and all), so they are there before a rebuild starts. `run` GETs
them in turn on one keep-alive connection, about 200 a second so the probe
itself takes little CPU, and prints "p50_ms p99_ms requests non_200";
`path` does the same with one path (a container listing, for
bench/db-replication.sh).
"""
import http.client
import os
import shutil
import sys
import time

from swift.common.ring import Ring
from swift.common.utils import hash_path


def objects(swift_dir, count):
    ring = Ring(swift_dir, ring_name='object')
    for i in range(count):
        name = 'o%07d' % i
        part = ring.get_part('AUTH_bench', 'c', name)
        yield part, name, hash_path('AUTH_bench', 'c', name)


def place(swift_dir, src, dst, count):
    for part, _name, h in objects(swift_dir, count):
        rel = os.path.join('objects', str(part), h[-3:], h)
        os.makedirs(os.path.dirname(os.path.join(dst, rel)), exist_ok=True)
        shutil.copytree(os.path.join(src, rel), os.path.join(dst, rel))


def run(swift_dir, port, dev, count, stop):
    probe(port, ['/%s/%d/AUTH_bench/c/%s' % (dev, part, name) for part, name, _ in objects(swift_dir, count)], stop)


def probe(port, paths, stop):
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
    lat, bad = [], 0
    while not os.path.exists(stop):
        for p in paths:
            t = time.perf_counter()
            try:
                conn.request('GET', p)
                r = conn.getresponse()
                r.read()
                bad += r.status != 200
            except (OSError, http.client.HTTPException):
                bad += 1
                conn.close()
                conn = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
            lat.append(time.perf_counter() - t)
            time.sleep(0.005)
    lat.sort()
    if not lat:
        print('0 0 0 0')
        return
    q = lambda f: lat[min(len(lat) - 1, int(f * len(lat)))] * 1000
    print('%.2f %.2f %d %d' % (q(0.5), q(0.99), len(lat), bad))


if __name__ == '__main__':
    if sys.argv[1] == 'place':
        place(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif sys.argv[1] == 'path':
        probe(int(sys.argv[2]), [sys.argv[3]], sys.argv[4])
    else:
        run(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), sys.argv[6])
