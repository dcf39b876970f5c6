"""Swift's own verdict on erasure-coded hash directories.

Reads a JSON list of cases on stdin, each {"names": [...], "frag_index":
int|null, "frag_prefs": [{"timestamp": str, "exclude": [int]}]|null}, and
prints for each what swift.obj.diskfile.ECDiskFileManager.get_ondisk_files
decides (4+2 policy): the chosen data, meta, content-type meta and
tombstone names, the obsolete and possibly reclaimable names, the durable
timestamp and every frag set. With "hash": true it also hashes a suffix
directory holding the names (ECDiskFileManager._hash_suffix, reclaim_age a
week, now = "now").
"""
import json
import logging
import os
import sys
import tempfile

from swift.common.exceptions import PathNotDir
from swift.common.storage_policy import ECStoragePolicy
from swift.common.utils import Timestamp
from swift.obj.diskfile import ECDiskFileManager

POLICY = ECStoragePolicy(1, "ec42", ec_type="liberasurecode_rs_vand", ec_ndata=4, ec_nparity=2)
logging.getLogger("ec").setLevel(logging.CRITICAL)  # unexpected names are part of the cases
MGR = ECDiskFileManager({"devices": "/tmp", "mount_check": "false"}, logging.getLogger("ec"))


def name(info):
    return info["filename"] if info else None


def verdict(case):
    prefs = case.get("frag_prefs")
    if prefs is not None:
        prefs = [{"timestamp": Timestamp(p["timestamp"]), "exclude": p["exclude"]} for p in prefs]
    r = MGR.get_ondisk_files(sorted(case["names"], reverse=True), "/x", verify=False, policy=POLICY,
                             frag_index=case.get("frag_index"), frag_prefs=prefs)
    durable = r.get("durable_frag_set")
    out = {
        "data": name(r.get("data_info")),
        "meta": name(r.get("meta_info")),
        "ctype": name(r.get("ctype_info")),
        "ts": name(r.get("ts_info")),
        "obsolete": sorted(i["filename"] for i in r.get("obsolete", [])),
        "possible_reclaim": sorted(i["filename"] for i in r.get("possible_reclaim", [])),
        "durable": durable[0]["timestamp"].internal if durable else None,
        "frag_sets": [[ts.internal, [i["frag_index"] for i in s]] for ts, s in r.get("frag_sets", {}).items()],
    }
    if case.get("hash"):
        with tempfile.TemporaryDirectory() as d:
            hdir = os.path.join(d, "abc", "0" * 29 + "abc")
            os.makedirs(hdir)
            for n in case["names"]:
                open(os.path.join(hdir, n), "w").close()
            try:
                hashes = MGR._hash_suffix(os.path.join(d, "abc"), policy=POLICY)
            except PathNotDir:
                # Nothing left in it: the suffix is gone.
                out["hash"] = None
            else:
                out["hash"] = {("None" if k is None else str(k)): v for k, v in hashes.items()}
    return out


print(json.dumps([verdict(c) for c in json.load(sys.stdin)]))
