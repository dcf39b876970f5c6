"""Every container or account database under a device, as Swift's own
brokers read it: what replicas must agree on (not their ids or sync
points).

    db_state.py DEVICE_DIR container|account   → JSON {hash: state}
"""
import glob
import json
import os
import sys

from swift.account.backend import AccountBroker
from swift.container.backend import ContainerBroker

dev, kind = sys.argv[1], sys.argv[2]
out = {}
for db in sorted(glob.glob(os.path.join(dev, kind + 's', '*', '*', '*', '*.db'))):
    h = os.path.basename(os.path.dirname(db))
    if kind == 'container':
        b = ContainerBroker(db)
        info = b.get_info()
        rows = [[r['name'], r['created_at'], r['size'], r['etag'], r['deleted'], r['storage_policy_index']]
                for r in b.get_items_since(-1, 1 << 30)]
        keep = ('account', 'container', 'put_timestamp', 'delete_timestamp', 'object_count', 'bytes_used',
                'hash', 'storage_policy_index')
    else:
        b = AccountBroker(db)
        info = b.get_info()
        rows = [[r['name'], r['put_timestamp'], r['delete_timestamp'], r['object_count'], r['bytes_used'],
                 r['deleted']] for r in b.get_items_since(-1, 1 << 30)]
        keep = ('account', 'put_timestamp', 'delete_timestamp', 'container_count', 'object_count',
                'bytes_used', 'hash')
    out[h] = {'info': {k: info[k] for k in keep}, 'metadata': b.metadata, 'rows': sorted(rows)}
print(json.dumps(out, sort_keys=True))
