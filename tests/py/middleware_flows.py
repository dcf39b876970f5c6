"""What the Swift proxy's middlewares do, end to end through the proxy.

    python middleware_flows.py ENDPOINT [FLOW...]
    python middleware_flows.py ENDPOINT --snapshot

ENDPOINT is the proxy (http://127.0.0.1:PORT) with the pipeline of
scripts/swift-cluster.sh. Each flow asserts what Swift's own servers give
(the same script passes against a cluster of Swift's Python servers) and
prints one JSON line (`{"flow": ..., "ok": true, ...}`); the script exits
non-zero on the first failure, with the traceback. The data is the same on
every run, so `--snapshot` (every container's listing and every object's
headers, times masked) after the flows is the same on any two clusters
whose servers behave alike.
"""

import hashlib
import hmac
import io
import json
import os
import random
import re
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request

ENDPOINT = sys.argv[1]
MIB = 1 << 20
RNG = random.Random(20261202)


def data(n):
    return RNG.randbytes(n)


def auth(user, key):
    req = urllib.request.Request(ENDPOINT + "/auth/v1.0", headers={"X-Auth-User": user, "X-Auth-Key": key})
    with urllib.request.urlopen(req) as r:
        return r.headers["X-Auth-Token"], r.headers["X-Storage-Url"]


TOKEN, URL = auth("test:tester", "testing")
ADMIN_TOKEN, _ = auth("admin:admin", "admin")
ACCOUNT_PATH = urllib.parse.urlparse(URL).path


class Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def header(self, name):
        return self.headers.get(name)

    def json(self):
        return json.loads(self.body)


def call(method, path, headers=None, body=b"", token=None, anonymous=False):
    """One request to the proxy; `path` is below the account (or absolute
    when it starts with /v1)."""
    url = ENDPOINT + path if path.startswith("/v1") or path.startswith("/auth") else URL + path
    h = dict(headers or {})
    if not anonymous:
        h.setdefault("X-Auth-Token", token or TOKEN)
    data = body if method in ("PUT", "POST") or body else None
    if method in ("PUT", "POST") and data is None:
        data = b""
    req = urllib.request.Request(url, data=data, headers=h, method=method)
    try:
        with urllib.request.urlopen(req) as r:
            return Resp(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        return Resp(e.code, e.headers, e.read())


def ok(r, *statuses, what=""):
    assert r.status in statuses, f"{what}: {r.status} {r.body[:300]!r}"
    return r


def listing(container, query=""):
    r = ok(call("GET", f"/{container}?format=json{query}"), 200, what=f"list {container}")
    return r.json()


def report(flow, **kw):
    print(json.dumps(dict(flow=flow, ok=True, **kw)), flush=True)


def md5(b):
    return hashlib.md5(b).hexdigest()


def slo():
    ok(call("PUT", "/slo-segs"), 201, 202)
    ok(call("PUT", "/slo"), 201, 202)
    segs = [data(MIB), data(MIB), b"tail"]
    manifest = []
    for i, s in enumerate(segs):
        ok(call("PUT", f"/slo-segs/s{i}", body=s), 201)
        manifest.append({"path": f"/slo-segs/s{i}", "etag": md5(s), "size_bytes": len(s)})
    whole = b"".join(segs)
    ok(call("PUT", "/slo/big?multipart-manifest=put", body=json.dumps(manifest).encode()), 201,
       what="SLO manifest PUT")
    r = ok(call("GET", "/slo/big"), 200)
    assert md5(r.body) == md5(whole)
    assert r.header("X-Static-Large-Object") == "True", dict(r.headers)
    etag = md5("".join(m["etag"] for m in manifest).encode())
    assert r.header("Etag").strip('"') == etag, r.header("Etag")
    h = ok(call("HEAD", "/slo/big"), 200)
    assert int(h.header("Content-Length")) == len(whole)
    # Across a segment boundary.
    r = ok(call("GET", "/slo/big", headers={"Range": f"bytes={MIB - 2}-{MIB + 1}"}), 206)
    assert r.body == whole[MIB - 2:MIB + 2]
    raw = ok(call("GET", "/slo/big?multipart-manifest=get"), 200).json()
    assert [e["name"] for e in raw] == [m["path"] for m in manifest], raw
    # The listing shows the manifest's SLO etag and total size.
    entry = [e for e in listing("slo") if e["name"] == "big"][0]
    assert entry["bytes"] == len(whole), entry
    ok(call("DELETE", "/slo/big?multipart-manifest=delete"), 200)
    left = [e["name"] for e in listing("slo-segs")]
    assert left == [], left
    # An async delete: the manifest goes, the segments are queued for the
    # expirer (the container UPDATE verb).
    for i, s in enumerate(segs):
        ok(call("PUT", f"/slo-segs/a{i}", body=s), 201)
    manifest = [{"path": f"/slo-segs/a{i}", "etag": md5(s), "size_bytes": len(s)} for i, s in enumerate(segs)]
    ok(call("PUT", "/slo/async?multipart-manifest=put", body=json.dumps(manifest).encode()), 201)
    ok(call("DELETE", "/slo/async?multipart-manifest=delete&async=yes"), 204, what="SLO async delete")
    ok(call("HEAD", "/slo/async"), 404)
    report("slo", queued=[e["name"] for e in listing("slo-segs")])


def dlo():
    ok(call("PUT", "/dlo"), 201, 202)
    parts = [b"one-", b"two-", b"three"]
    for i, p in enumerate(parts):
        ok(call("PUT", f"/dlo/parts/{i:02d}", body=p), 201)
    ok(call("PUT", "/dlo/whole", headers={"X-Object-Manifest": "dlo/parts/"}), 201)
    r = ok(call("GET", "/dlo/whole"), 200)
    assert r.body == b"".join(parts), r.body
    assert r.header("X-Object-Manifest") == "dlo/parts/"
    want = md5("".join(md5(p) for p in parts).encode())
    assert r.header("Etag").strip('"') == want, r.header("Etag")
    r = ok(call("GET", "/dlo/whole", headers={"Range": "bytes=2-6"}), 206)
    assert r.body == b"".join(parts)[2:7]
    report("dlo")


def versioned_writes_legacy():
    # History mode: every overwrite and delete archives the old version.
    ok(call("PUT", "/hist-archive"), 201, 202)
    ok(call("PUT", "/hist", headers={"X-History-Location": "hist-archive"}), 201, 202)
    for v in (b"v1", b"v2", b"v3"):
        ok(call("PUT", "/hist/o", body=v), 201)
    assert ok(call("GET", "/hist/o"), 200).body == b"v3"
    assert len(listing("hist-archive")) == 2
    ok(call("DELETE", "/hist/o"), 204)
    ok(call("GET", "/hist/o"), 404)
    archived = listing("hist-archive")
    assert len(archived) == 4, archived  # v1, v2, v3 and the delete marker
    # Stack mode: a delete brings the previous version back.
    ok(call("PUT", "/stack-archive"), 201, 202)
    ok(call("PUT", "/stack", headers={"X-Versions-Location": "stack-archive"}), 201, 202)
    for v in (b"s1", b"s2"):
        ok(call("PUT", "/stack/o", body=v), 201)
    assert len(listing("stack-archive")) == 1
    ok(call("DELETE", "/stack/o"), 204)
    assert ok(call("GET", "/stack/o"), 200).body == b"s1"
    assert listing("stack-archive") == []
    report("versioned_writes_legacy")


def object_versioning():
    ok(call("PUT", "/versioned", headers={"X-Versions-Enabled": "true"}), 201, 202)
    ids = []
    for v in (b"first", b"second"):
        r = ok(call("PUT", "/versioned/o", body=v), 201)
        ids.append(r.header("X-Object-Version-Id"))
    assert all(ids) and ids[0] != ids[1], ids
    assert ok(call("GET", "/versioned/o"), 200).body == b"second"
    r = ok(call("GET", f"/versioned/o?version-id={ids[0]}"), 200)
    assert r.body == b"first" and r.header("X-Object-Version-Id") == ids[0]
    versions = listing("versioned", "&versions")
    assert sorted(e["version_id"] for e in versions) == sorted(ids), versions
    ok(call("DELETE", "/versioned/o"), 204)
    ok(call("GET", "/versioned/o"), 404)
    versions = listing("versioned", "&versions")
    markers = [e for e in versions if e.get("content_type") == "application/x-deleted;swift_versions_deleted=1"]
    assert len(versions) == 3 and len(markers) == 1, versions
    # Deleting a version by id; the account lists the hidden versions
    # container only as its own.
    ok(call("DELETE", f"/versioned/o?version-id={ids[0]}"), 204)
    assert ok(call("GET", f"/versioned/o?version-id={ids[0]}"), 404)
    ok(call("POST", "/versioned", headers={"X-Versions-Enabled": "false"}), 204)
    report("object_versioning", versions=len(versions))


def symlink():
    ok(call("PUT", "/links"), 201, 202)
    ok(call("PUT", "/links/target", body=b"pointed at", headers={"Content-Type": "text/x-target"}), 201)
    ok(call("PUT", "/links/link", headers={"X-Symlink-Target": "links/target"}), 201)
    r = ok(call("GET", "/links/link"), 200)
    assert r.body == b"pointed at" and r.header("Content-Type") == "text/x-target"
    r = ok(call("HEAD", "/links/link?symlink=get"), 200)
    assert r.header("X-Symlink-Target") == "links/target", dict(r.headers)
    # A static link pins the target's etag.
    etag = md5(b"pointed at")
    ok(call("PUT", "/links/static", headers={"X-Symlink-Target": "links/target", "X-Symlink-Target-Etag": etag}), 201)
    assert ok(call("GET", "/links/static"), 200).body == b"pointed at"
    ok(call("PUT", "/links/target", body=b"changed"), 201)
    ok(call("GET", "/links/static"), 409)
    assert ok(call("GET", "/links/link"), 200).body == b"changed"
    entry = [e for e in listing("links") if e["name"] == "link"][0]
    assert entry.get("symlink_path", "").endswith("/links/target"), entry
    ok(call("DELETE", "/links/target"), 204)
    ok(call("GET", "/links/link"), 404)
    report("symlink")


def copy():
    ok(call("PUT", "/copies"), 201, 202)
    body = data(64 * 1024)
    ok(call("PUT", "/copies/src", body=body, headers={"X-Object-Meta-Color": "blue", "Content-Type": "a/b"}), 201)
    ok(call("COPY", "/copies/src", headers={"Destination": "copies/by-copy"}), 201)
    r = ok(call("GET", "/copies/by-copy"), 200)
    assert r.body == body and r.header("X-Object-Meta-Color") == "blue" and r.header("Content-Type") == "a/b"
    ok(call("PUT", "/copies/by-put", headers={"X-Copy-From": "copies/src", "X-Object-Meta-Size": "m"}), 201)
    r = ok(call("GET", "/copies/by-put"), 200)
    assert r.body == body and r.header("X-Object-Meta-Color") == "blue" and r.header("X-Object-Meta-Size") == "m"
    ok(call("PUT", "/copies/fresh", headers={"X-Copy-From": "copies/src", "X-Fresh-Metadata": "true"}), 201)
    r = ok(call("GET", "/copies/fresh"), 200)
    assert r.body == body and r.header("X-Object-Meta-Color") is None
    r = ok(call("GET", "/copies/src", headers={"Range": "bytes=0-9"}), 206)
    assert r.body == body[:10]
    report("copy")


def tempurl():
    ok(call("PUT", "/temp"), 201, 202)
    ok(call("PUT", "/temp/o", body=b"temporary"), 201)
    key = "tempurl-secret"
    ok(call("POST", "", headers={"X-Account-Meta-Temp-URL-Key": key}), 204)
    path = f"{ACCOUNT_PATH}/temp/o"

    def signed(method, expires):
        sig = hmac.new(key.encode(), f"{method}\n{expires}\n{path}".encode(), hashlib.sha256).hexdigest()
        return f"{path}?temp_url_sig={sig}&temp_url_expires={expires}"

    r = ok(call("GET", signed("GET", int(time.time()) + 300), anonymous=True), 200, what="tempurl GET")
    assert r.body == b"temporary"
    ok(call("GET", signed("GET", int(time.time()) - 10), anonymous=True), 401)
    ok(call("PUT", signed("PUT", int(time.time()) + 300), body=b"via tempurl", anonymous=True), 201)
    assert ok(call("GET", "/temp/o"), 200).body == b"via tempurl"
    ok(call("GET", "/temp/o", anonymous=True), 401)
    report("tempurl")


def bulk():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("bulk/a.txt", b"aaa"), ("bulk/b.txt", b"bbbb"), ("bulk/sub/c.txt", b"c")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    r = ok(call("PUT", "?extract-archive=tar", body=buf.getvalue(), headers={"Accept": "application/json"}), 200)
    result = r.json()
    assert result["Number Files Created"] == 3 and result["Errors"] == [], result
    assert ok(call("GET", "/bulk/sub/c.txt"), 200).body == b"c"
    names = sorted(e["name"] for e in listing("bulk"))
    assert names == ["a.txt", "b.txt", "sub/c.txt"], names
    body = "\n".join(["bulk/a.txt", "bulk/b.txt", "bulk/sub/c.txt", "bulk/none", "bulk"]).encode()
    r = ok(call("POST", "?bulk-delete", body=body,
                headers={"Content-Type": "text/plain", "Accept": "application/json"}), 200)
    result = r.json()
    assert result["Number Deleted"] == 4 and result["Number Not Found"] == 1, result
    ok(call("HEAD", "/bulk"), 404)
    report("bulk", deleted=result["Number Deleted"])


def container_sync():
    ok(call("PUT", "/sync-dst"), 201, 202)
    target = f"http://127.0.0.1:{urllib.parse.urlparse(ENDPOINT).port}{ACCOUNT_PATH}/sync-dst"
    ok(call("PUT", "/sync-src", headers={"X-Container-Sync-To": target, "X-Container-Sync-Key": "k1"}), 201, 202)
    r = ok(call("HEAD", "/sync-src"), 204)
    assert r.header("X-Container-Sync-To") == target, dict(r.headers)
    assert r.header("X-Container-Sync-Key") == "k1", dict(r.headers)
    # A target the container servers do not allow.
    ok(call("POST", "/sync-src", headers={"X-Container-Sync-To": "ftp://example.com/x"}), 400)
    ok(call("POST", "/sync-src", headers={"X-Container-Sync-To": ""}), 204)
    r = ok(call("HEAD", "/sync-src"), 204)
    assert r.header("X-Container-Sync-To") is None, dict(r.headers)
    report("container_sync")


def staticweb():
    ok(call("PUT", "/web", headers={
        "X-Container-Read": ".r:*,.rlistings",
        "X-Container-Meta-Web-Index": "index.html",
        "X-Container-Meta-Web-Listings": "true",
    }), 201, 202)
    ok(call("PUT", "/web/index.html", body=b"<h1>home</h1>", headers={"Content-Type": "text/html"}), 201)
    ok(call("PUT", "/web/docs/page.txt", body=b"page"), 201)
    r = ok(call("GET", f"{ACCOUNT_PATH}/web/", anonymous=True), 200, what="staticweb index")
    assert r.body == b"<h1>home</h1>", r.body
    r = ok(call("GET", f"{ACCOUNT_PATH}/web/docs/", anonymous=True), 200, what="staticweb listing")
    assert b"page.txt" in r.body and r.header("Content-Type").startswith("text/html"), r.body
    r = ok(call("GET", f"{ACCOUNT_PATH}/web/docs/page.txt", anonymous=True), 200)
    assert r.body == b"page"
    report("staticweb")


def quotas():
    ok(call("PUT", "/quota", headers={"X-Container-Meta-Quota-Bytes": "10", "X-Container-Meta-Quota-Count": "2"}),
       201, 202)
    ok(call("PUT", "/quota/big", body=b"x" * 11), 413)
    ok(call("PUT", "/quota/a", body=b"12345"), 201)
    ok(call("PUT", "/quota/b", body=b"12345"), 201)
    ok(call("PUT", "/quota/c", body=b"1"), 413)
    # An account quota, set by a reseller admin, just above what is used.
    used = int(ok(call("HEAD", ""), 204).header("X-Account-Bytes-Used"))
    ok(call("POST", "", token=ADMIN_TOKEN, headers={"X-Account-Meta-Quota-Bytes": str(used + 100)}), 204)
    ok(call("PUT", "/slo/over-quota", body=b"y" * 200), 413)
    ok(call("PUT", "/slo/under-quota", body=b"y" * 50), 201)
    ok(call("POST", "", token=ADMIN_TOKEN, headers={"X-Remove-Account-Meta-Quota-Bytes": "x"}), 204)
    ok(call("PUT", "/slo/over-quota", body=b"y" * 200), 201)
    report("quotas")


# Times, and the names and ids made of them, differ from run to run.
TIMES = re.compile(r"\d{10}\.\d{5}(_[0-9a-f]{16})?|\d{10}\.\d{6}|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?"
                   r"|\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT|\d{10}")
VARYING = {"date", "x-trans-id", "x-openstack-request-id", "last-modified", "x-timestamp", "x-put-timestamp"}


def masked(v):
    return TIMES.sub("T", v) if isinstance(v, str) else v


def snapshot():
    """Every container's listing (with versions where enabled) and every
    object's headers as the proxy gives them, times masked."""
    out = {}
    account = ok(call("GET", "?format=json"), 200).json()
    for c in account:
        name = c["name"]
        entries = listing(urllib.parse.quote(name))
        rows = sorted(json.dumps({k: masked(v) for k, v in e.items() if k != "last_modified"}, sort_keys=True)
                      for e in entries)
        heads = {}
        for e in entries:
            if "name" not in e:
                continue
            r = call("HEAD", f"/{urllib.parse.quote(name)}/{urllib.parse.quote(e['name'])}?symlink=get")
            heads[masked(e["name"])] = [r.status] + sorted(
                f"{k.lower()}: {masked(v)}" for k, v in r.headers.items() if k.lower() not in VARYING)
        h = call("HEAD", f"/{urllib.parse.quote(name)}")
        if h.header("X-Versions-Enabled"):
            entries = listing(urllib.parse.quote(name), "&versions")
            rows += sorted(json.dumps({k: masked(v) for k, v in e.items() if k != "last_modified"}, sort_keys=True)
                           for e in entries)
        # (The account's own counts of each container lag by the container
        # updater's pass: its HEAD of the container is what counts.)
        out[masked(name)] = {
            "rows": rows, "objects": heads,
            "headers": sorted(f"{k.lower()}: {masked(v)}" for k, v in h.headers.items() if k.lower() not in VARYING),
        }
    print(json.dumps(out, sort_keys=True, indent=1))


FLOWS = [slo, dlo, versioned_writes_legacy, object_versioning, symlink, copy, tempurl, bulk, container_sync,
         staticweb, quotas]

if __name__ == "__main__":
    only = sys.argv[2:]
    if only == ["--snapshot"]:
        snapshot()
        sys.exit(0)
    for flow in FLOWS:
        if not only or flow.__name__ in only:
            flow()
