"""Put/get throughput of Qor's S3Store against boto3's transfer manager, same bytes, one run.

    QOR_TEST_S3_ENDPOINT=… QOR_TEST_S3_ACCESS_KEY=… QOR_TEST_S3_SECRET_KEY=… \\
        .venv/bin/python bench/store_put_get.py [--size-mib 512]

Against the S3 server on loopback (versitygw in development and CI):

* **Qor put**: ``S3Store.put_file`` with the file's SHA-256 given (as the digitise flow does,
  having hashed while encrypting): multipart with per-part and full-object CRC64NVME checked
  by the server, ``If-None-Match``, SHA-256 metadata;
* **boto3 upload_file**: ``TransferConfig()`` defaults (8 MiB parts, 10 threads) through a client
  with the same checksum settings — what ``aws s3 cp`` does;
* **Qor get**: ``S3Store.iter_chunks`` (one streaming GET) written to a file;
* **boto3 download_file**: concurrent ranged GETs (defaults) to a file.

Also FileStore put/get of the same file for reference. Prints MiB/s and Qor/boto3 ratios.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from boto3.s3.transfer import TransferConfig

from storage import FileStore, S3Options, S3Store

MiB = 1024 * 1024


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=512)
    ap.add_argument("--endpoint", default=os.environ.get("QOR_TEST_S3_ENDPOINT"))
    ap.add_argument("--access-key", default=os.environ.get("QOR_TEST_S3_ACCESS_KEY"))
    ap.add_argument("--secret-key", default=os.environ.get("QOR_TEST_S3_SECRET_KEY"))
    args = ap.parse_args()
    if not (args.endpoint and args.access_key and args.secret_key):
        raise SystemExit("set QOR_TEST_S3_ENDPOINT/ACCESS_KEY/SECRET_KEY (infra/test-services)")
    opts = S3Options(
        endpoint_url=args.endpoint,
        access_key=args.access_key,
        secret_key=args.secret_key,
        addressing_style="path",
    )
    bucket = f"qor-bench-{uuid.uuid4().hex[:8]}"
    store = S3Store(bucket=bucket, prefix="qor", options=opts)
    store.create_bucket(object_lock=False)
    client = store.client
    size: int = args.size_mib * MiB
    with tempfile.TemporaryDirectory(prefix="qor-bench-") as d:
        src = Path(d) / "src.bin"
        block = os.urandom(64 * MiB)
        with src.open("wb") as f:
            for i in range(0, size, len(block)):
                f.write(block[: min(len(block), size - i)])
        digest = hashlib.sha256(src.read_bytes()).hexdigest()

        qor_put = timed(lambda: store.put_file("bench/a.bin", src, sha256=digest))
        tm_put = timed(
            lambda: client.upload_file(str(src), bucket, "boto3/a.bin", Config=TransferConfig())
        )

        def qor_get() -> None:
            with (Path(d) / "qor.out").open("wb") as out:
                for c in store.iter_chunks("bench/a.bin", chunk_size=8 * MiB):
                    out.write(c)

        qor_get_s = timed(qor_get)
        tm_get = timed(
            lambda: client.download_file(
                bucket, "boto3/a.bin", str(Path(d) / "tm.out"), Config=TransferConfig()
            )
        )
        for name in ("qor.out", "tm.out"):
            (Path(d) / name).unlink()

        fs = FileStore(Path(d) / "fs")
        fs_put = timed(lambda: fs.put_file("bench/a.bin", src, sha256=digest))

        def fs_get() -> None:
            with (Path(d) / "fs.out").open("wb") as out:
                for c in fs.iter_chunks("bench/a.bin", chunk_size=8 * MiB):
                    out.write(c)

        fs_get_s = timed(fs_get)

    mib = size / MiB
    print(f"object: {mib:.0f} MiB, S3 server {args.endpoint}")
    print(f"{'':28}{'put MiB/s':>10}{'get MiB/s':>11}")
    print(f"{'Qor S3Store':28}{mib / qor_put:10.0f}{mib / qor_get_s:11.0f}")
    print(f"{'boto3 transfer manager':28}{mib / tm_put:10.0f}{mib / tm_get:11.0f}")
    print(f"{'Qor FileStore (fsync)':28}{mib / fs_put:10.0f}{mib / fs_get_s:11.0f}")
    print(
        f"ratio Qor S3Store / boto3 transfer manager: put {tm_put / qor_put:.2f}x, "
        f"get {tm_get / qor_get_s:.2f}x"
    )
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for v in page.get("Versions", []):
            client.delete_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])
    client.delete_bucket(Bucket=bucket)


if __name__ == "__main__":
    main()
