"""Swift 2.38.3's reading of every object file's metadata under a tree,
for aerie's tests: prints {relative path: metadata} as JSON (values as
Swift's read_metadata returns them).

  metadata.py ROOT
"""
import json
import os
import sys

from swift.obj.diskfile import read_metadata

root = sys.argv[1]
out = {}
for d, _dirs, files in os.walk(root):
    for f in files:
        if f.endswith(('.data', '.meta', '.ts')):
            p = os.path.join(d, f)
            out[os.path.relpath(p, root)] = read_metadata(p)
print(json.dumps(out, sort_keys=True))
