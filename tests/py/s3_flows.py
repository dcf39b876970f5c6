"""S3 flows through Swift's proxy (s3api, tempauth) with a real S3 client.

    python s3_flows.py ENDPOINT SIGNATURE [encrypted]

ENDPOINT is the proxy (http://127.0.0.1:PORT), SIGNATURE `s3v4` or `s3`
(sigv2). Each flow asserts what S3 promises; the script prints one JSON
line per flow (`{"flow": ..., "ok": true, ...}`) and exits non-zero on the
first failure, with the traceback. Buckets are named after the signature, so
both runs can share a cluster.
"""

import hashlib
import json
import os
import socket
import sys
import time
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINT, SIGNATURE = sys.argv[1], sys.argv[2]
ENCRYPTED = len(sys.argv) > 3 and sys.argv[3] == "encrypted"
TAG = "v4" if SIGNATURE == "s3v4" else "v2"
MIB = 1 << 20

if SIGNATURE == "s3":
    # SigV2 with path-style addressing signs bucket requests with a trailing
    # slash the request lacks (boto/boto3#4433), so these go as a real
    # client would to S3: virtual-hosted (the proxy's s3api has
    # storage_domain = localhost), with <bucket>.localhost resolved to the
    # loopback proxy here.
    _getaddrinfo = socket.getaddrinfo

    def _loopback(host, *args, **kw):
        if isinstance(host, str) and host.endswith(".localhost"):
            host = "127.0.0.1"
        return _getaddrinfo(host, *args, **kw)

    socket.getaddrinfo = _loopback
    S3_ENDPOINT = ENDPOINT.replace("127.0.0.1", "localhost")
    ADDRESSING = "virtual"
else:
    S3_ENDPOINT = ENDPOINT
    ADDRESSING = "path"

s3 = boto3.client(
    "s3",
    endpoint_url=S3_ENDPOINT,
    aws_access_key_id="test:tester",
    aws_secret_access_key="testing",
    region_name="us-east-1",
    config=Config(
        signature_version=SIGNATURE,
        s3={"addressing_style": ADDRESSING},
        # A failure must show, not be retried for minutes.
        retries={"max_attempts": 1, "mode": "standard"},
        connect_timeout=10,
        read_timeout=60,
        # s3api checks what it can; the default CRC checksums of newer
        # clients are one more thing, so they are sent only when required.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    ),
)


def report(flow, **kw):
    print(json.dumps(dict(flow=flow, ok=True, **kw)), flush=True)


def code(err):
    return err.response["Error"]["Code"]


def swift_listing(container):
    """The container's listing through the Swift API (tempauth)."""
    base = ENDPOINT
    req = urllib.request.Request(base + "/auth/v1.0",
                                 headers={"X-Auth-User": "test:tester", "X-Auth-Key": "testing"})
    with urllib.request.urlopen(req) as r:
        token, url = r.headers["X-Auth-Token"], r.headers["X-Storage-Url"]
    req = urllib.request.Request(url + "/" + container + "?format=json", headers={"X-Auth-Token": token})
    try:
        with urllib.request.urlopen(req) as r:
            return json.loads(r.read() or b"[]")
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return []
        raise


def buckets():
    for b in (f"flows-{TAG}", f"spare-{TAG}"):
        s3.create_bucket(Bucket=b)
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert f"flows-{TAG}" in names and f"spare-{TAG}" in names, names
    s3.delete_bucket(Bucket=f"spare-{TAG}")
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert f"spare-{TAG}" not in names, names
    try:
        s3.head_bucket(Bucket=f"spare-{TAG}")
        raise AssertionError("a deleted bucket is still there")
    except ClientError as e:
        assert code(e) in ("404", "NoSuchBucket"), e
    report("buckets", listed=names)


# Every punctuation character an HTTP header name (and so an S3 metadata
# name) may carry, each in a name of its own, and `_`, which s3api stores
# escaped as `=5F`.
PUNCT = "!#$%&'*+-.^_`|~"


def metadata():
    bucket = f"flows-{TAG}"
    names = {"foo_bar": "underscore", "plain": "value"}
    for i, c in enumerate(PUNCT):
        names[f"p{i}{c}x"] = f"punct-{i}"
    # A few names per object: an ext4 inode holds one block of xattrs, and
    # through an encrypting proxy each value grows several times (Swift's
    # servers answer 507 past it, as aerie does).
    items = sorted(names.items())
    for n in range(0, len(items), 5):
        meta = dict(items[n:n + 5])
        key = f"meta/{n}"
        body = b"metadata body\n"
        s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata=meta, ContentType="text/x-flow")
        head = s3.head_object(Bucket=bucket, Key=key)
        assert head["Metadata"] == meta, (head["Metadata"], meta)
        assert head["ContentType"] == "text/x-flow", head["ContentType"]
        assert head["ContentLength"] == len(body)
        got = s3.get_object(Bucket=bucket, Key=key)
        assert got["Body"].read() == body
        assert got["Metadata"] == meta, got["Metadata"]
        assert head["ETag"].strip('"') == hashlib.md5(body).hexdigest()
    report("metadata", names=sorted(names))


def multipart():
    bucket = f"flows-{TAG}"
    parts = [os.urandom(5 * MIB) for _ in range(3)]
    up = s3.create_multipart_upload(Bucket=bucket, Key="mpu", Metadata={"kind": "multipart"})
    uid = up["UploadId"]
    done = []
    for n, data in enumerate(parts, 1):
        r = s3.upload_part(Bucket=bucket, Key="mpu", UploadId=uid, PartNumber=n, Body=data)
        assert r["ETag"].strip('"') == hashlib.md5(data).hexdigest(), r["ETag"]
        done.append({"PartNumber": n, "ETag": r["ETag"]})
    listed = s3.list_parts(Bucket=bucket, Key="mpu", UploadId=uid)["Parts"]
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in listed] == \
        [(d["PartNumber"], 5 * MIB, d["ETag"]) for d in done], listed
    uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [u["UploadId"] for u in uploads] == [uid], uploads
    r = s3.complete_multipart_upload(Bucket=bucket, Key="mpu", UploadId=uid,
                                     MultipartUpload={"Parts": done})
    md5s = b"".join(hashlib.md5(p).digest() for p in parts)
    want_etag = f"{hashlib.md5(md5s).hexdigest()}-3"
    assert r["ETag"].strip('"') == want_etag, r["ETag"]
    got = s3.get_object(Bucket=bucket, Key="mpu")
    data = got["Body"].read()
    assert hashlib.md5(data).hexdigest() == hashlib.md5(b"".join(parts)).hexdigest()
    assert got["Metadata"] == {"kind": "multipart"}, got["Metadata"]
    assert got["ETag"].strip('"') == want_etag
    # A part of it, by part number.
    p2 = s3.get_object(Bucket=bucket, Key="mpu", PartNumber=2)
    assert p2["Body"].read() == parts[1]
    # Aborted: its segments go at once.
    up = s3.create_multipart_upload(Bucket=bucket, Key="aborted")
    aid = up["UploadId"]
    s3.upload_part(Bucket=bucket, Key="aborted", UploadId=aid, PartNumber=1, Body=os.urandom(5 * MIB))
    s3.upload_part(Bucket=bucket, Key="aborted", UploadId=aid, PartNumber=2, Body=b"last")
    segs = [o["name"] for o in swift_listing(bucket + "+segments") if o["name"].startswith("aborted/")]
    assert segs, "the parts are segments"
    s3.abort_multipart_upload(Bucket=bucket, Key="aborted", UploadId=aid)
    segs = [o["name"] for o in swift_listing(bucket + "+segments") if o["name"].startswith("aborted/")]
    assert segs == [], segs
    try:
        s3.list_parts(Bucket=bucket, Key="aborted", UploadId=aid)
        raise AssertionError("an aborted upload still lists parts")
    except ClientError as e:
        assert code(e) == "NoSuchUpload", e
    uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert uploads == [], uploads
    report("multipart", etag=want_etag, upload=uid)


def delete_multipart():
    """Deleting a multipart object deletes its manifest at once and queues
    its segments for the expirer (SLO's async delete: the container UPDATE
    verb on the nodes)."""
    bucket = f"flows-{TAG}"
    s3.delete_object(Bucket=bucket, Key="mpu")
    try:
        s3.head_object(Bucket=bucket, Key="mpu")
        raise AssertionError("a deleted multipart object is still there")
    except ClientError as e:
        assert code(e) in ("404", "NoSuchKey"), e
    left = [o["name"] for o in swift_listing(bucket + "+segments") if o["name"].startswith("mpu/")]
    report("delete_multipart", segments_queued=left)


def multi_delete():
    bucket = f"flows-{TAG}"
    keys = [f"many/{i}" for i in range(5)]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys + ["many/none"]]})
    deleted = sorted(d["Key"] for d in r.get("Deleted", []))
    assert deleted == sorted(keys + ["many/none"]), r
    assert not r.get("Errors"), r
    left = s3.list_objects_v2(Bucket=bucket, Prefix="many/").get("Contents", [])
    assert left == [], left
    report("multi_delete", deleted=len(deleted))


def copy():
    bucket = f"flows-{TAG}"
    body = os.urandom(100 * 1024)
    s3.put_object(Bucket=bucket, Key="src", Body=body, Metadata={"orig": "yes"})
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    got = s3.get_object(Bucket=bucket, Key="dst")
    assert got["Body"].read() == body
    assert got["Metadata"] == {"orig": "yes"}, got["Metadata"]
    s3.copy_object(Bucket=bucket, Key="dst2", CopySource={"Bucket": bucket, "Key": "src"},
                   MetadataDirective="REPLACE", Metadata={"new_one": "1"}, ContentType="a/b")
    got = s3.get_object(Bucket=bucket, Key="dst2")
    assert got["Body"].read() == body
    assert got["Metadata"] == {"new_one": "1"}, got["Metadata"]
    assert got["ContentType"] == "a/b"
    report("copy")


def ranges():
    bucket = f"flows-{TAG}"
    body = bytes(range(256)) * 40
    s3.put_object(Bucket=bucket, Key="ranged", Body=body)
    r = s3.get_object(Bucket=bucket, Key="ranged", Range="bytes=10-19")
    assert r["Body"].read() == body[10:20]
    assert r["ContentRange"] == f"bytes 10-19/{len(body)}", r["ContentRange"]
    r = s3.get_object(Bucket=bucket, Key="ranged", Range="bytes=-5")
    assert r["Body"].read() == body[-5:]
    r = s3.get_object(Bucket=bucket, Key="ranged", Range=f"bytes={len(body) - 3}-")
    assert r["Body"].read() == body[-3:]
    try:
        s3.get_object(Bucket=bucket, Key="ranged", Range=f"bytes={len(body) + 10}-")
        raise AssertionError("an unsatisfiable range was served")
    except ClientError as e:
        assert code(e) == "InvalidRange", e
    report("ranges")


def versioning():
    bucket = f"versions-{TAG}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    v1 = s3.put_object(Bucket=bucket, Key="v", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="v", Body=b"two")["VersionId"]
    assert v1 != v2
    assert s3.get_object(Bucket=bucket, Key="v")["Body"].read() == b"two"
    assert s3.get_object(Bucket=bucket, Key="v", VersionId=v1)["Body"].read() == b"one"
    versions = s3.list_object_versions(Bucket=bucket)
    assert sorted(v["VersionId"] for v in versions["Versions"]) == sorted([v1, v2]), versions
    marker = s3.delete_object(Bucket=bucket, Key="v")
    assert marker.get("DeleteMarker") is True, marker
    try:
        s3.get_object(Bucket=bucket, Key="v")
        raise AssertionError("a delete marker did not hide the object")
    except ClientError as e:
        assert code(e) == "NoSuchKey", e
    versions = s3.list_object_versions(Bucket=bucket)
    assert len(versions.get("DeleteMarkers", [])) == 1, versions
    assert len(versions["Versions"]) == 2, versions
    assert s3.get_object(Bucket=bucket, Key="v", VersionId=v2)["Body"].read() == b"two"
    # Removing the marker brings the latest version back.
    s3.delete_object(Bucket=bucket, Key="v", VersionId=marker["VersionId"])
    assert s3.get_object(Bucket=bucket, Key="v")["Body"].read() == b"two"
    # Suspended: a new write is the "null" version.
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    s3.put_object(Bucket=bucket, Key="v", Body=b"three")
    r = s3.get_object(Bucket=bucket, Key="v")
    assert r["Body"].read() == b"three"
    ids = [v["VersionId"] for v in s3.list_object_versions(Bucket=bucket)["Versions"]]
    assert "null" in ids and v1 in ids and v2 in ids, ids
    report("versioning", versions=ids)


def encrypted():
    """Through an encrypting proxy: what comes back is what went in, and the
    listing shows the plaintext's etag."""
    bucket = f"flows-{TAG}"
    body = (b"PLAINTEXT-MARKER-" + TAG.encode() + b"-") * 4096
    s3.put_object(Bucket=bucket, Key="secret", Body=body, Metadata={"secret_meta": "MARKER-META"})
    got = s3.get_object(Bucket=bucket, Key="secret")
    assert hashlib.md5(got["Body"].read()).hexdigest() == hashlib.md5(body).hexdigest()
    assert got["Metadata"] == {"secret_meta": "MARKER-META"}, got["Metadata"]
    listed = {o["Key"]: o for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert listed["secret"]["ETag"].strip('"') == hashlib.md5(body).hexdigest(), listed["secret"]
    assert listed["secret"]["Size"] == len(body)
    report("encrypted", etag=hashlib.md5(body).hexdigest())


def cleanup():
    """Emptied buckets can be deleted."""
    bucket = f"flows-{TAG}"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    keep = {"secret"} if ENCRYPTED else set()
    for k in keys:
        if k not in keep:
            s3.delete_object(Bucket=bucket, Key=k)
    left = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert set(left) == keep, left
    report("cleanup", kept=sorted(keep))


FLOWS = [buckets, metadata, multipart, delete_multipart, multi_delete, copy, ranges, versioning]
if ENCRYPTED:
    FLOWS.append(encrypted)
FLOWS.append(cleanup)

if __name__ == "__main__":
    for flow in FLOWS:
        started = time.monotonic()
        flow()
