"""Swift 2.38.3's own suffix-hash code on a devices tree, for aerie's tests.

  swift_hashes.py hashes DEVICES DEVICE PARTITION   _get_hashes, as JSON
  swift_hashes.py unpickle FILE                     a pickle (REPLICATE body), as JSON
  swift_hashes.py read PARTITION_DIR                read_hashes, as JSON
  swift_hashes.py write PARTITION_DIR JSON          write_hashes
  swift_hashes.py consolidate PARTITION_DIR         consolidate_hashes, as JSON
"""
import json
import sys

from swift.common.storage_policy import POLICIES
from swift.common.utils import get_logger
from swift.obj import diskfile

cmd = sys.argv[1]
if cmd == 'hashes':
    devices, device, partition = sys.argv[2:5]
    conf = {'devices': devices, 'mount_check': 'false'}
    mgr = diskfile.DiskFileManager(conf, get_logger(conf, log_route='test'))
    _hashed, hashes = mgr._get_hashes(device, partition, POLICIES[0])
    print(json.dumps(hashes, sort_keys=True))
elif cmd == 'unpickle':
    # The restricted unpickler Swift's replicator reads REPLICATE with.
    from swift.common.utils.pickle import unpickle
    with open(sys.argv[2], 'rb') as f:
        print(json.dumps(unpickle(f.read()), sort_keys=True))
elif cmd == 'read':
    print(json.dumps(diskfile.read_hashes(sys.argv[2]), sort_keys=True))
elif cmd == 'write':
    diskfile.write_hashes(sys.argv[2], json.loads(sys.argv[3]))
elif cmd == 'consolidate':
    print(json.dumps(diskfile.consolidate_hashes(sys.argv[2]), sort_keys=True))
else:
    sys.exit('unknown command %s' % cmd)
