"""Swift 2.38.3's own SSYNC sender (swift.obj.ssync_sender.Sender), pushing
every suffix of a local partition to an object server, for aerie's tests.

  ssync_push.py DEVICES DEVICE PARTITION HOST PORT REMOTE_DEVICE

Prints the sender's result as JSON: {"ok": bool, "in_sync": [hash, ...]}.
"""
import json
import os
import sys

from swift.common import utils
from swift.common.storage_policy import POLICIES
from swift.obj import diskfile, ssync_sender

devices, device, partition, host, port, remote_device = sys.argv[1:7]


class Daemon(object):
    def __init__(self):
        conf = {'devices': devices, 'mount_check': 'false'}
        self.logger = utils.get_logger(conf, log_route='ssync-test')
        self._df_router = diskfile.DiskFileRouter(conf, self.logger)
        self.conn_timeout = 5
        self.node_timeout = 10
        self.http_timeout = 60
        self.network_chunk_size = 65536


part_dir = os.path.join(devices, device, 'objects', partition)
suffixes = sorted(s for s in os.listdir(part_dir) if len(s) == 3)
node = {'replication_ip': host, 'replication_port': int(port), 'ip': host, 'port': int(port),
        'device': remote_device, 'index': 0}
job = {'device': device, 'partition': partition, 'policy': POLICIES[0]}
ok, in_sync = ssync_sender.Sender(Daemon(), node, job, suffixes)()
print(json.dumps({'ok': ok, 'in_sync': sorted(in_sync)}))
