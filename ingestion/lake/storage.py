"""Where files live: a local folder or an `s3://bucket/prefix`, behind one fsspec filesystem.

S3 uses the standard AWS credential chain (environment, profile, ECS task role) and honours
AWS_ENDPOINT_URL_S3, as boto3 does. A write is atomic per object on both: S3 shows an object
only once its upload is complete; a local file is written beside its target and renamed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq


def is_s3(url: str) -> bool:
    return url.startswith("s3://")


def bucket_url(url: str) -> str:
    """An `s3://` URL unchanged; a local path made absolute."""
    return url if is_s3(url) else str(Path(url.removeprefix("file://")).resolve())


def filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem behind `url`, and the root path inside it (no trailing slash)."""
    if is_s3(url):
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        fs = fsspec.filesystem("s3", endpoint_url=endpoint, skip_instance_cache=True)
        return fs, url.removeprefix("s3://").rstrip("/")
    return fsspec.filesystem("file", auto_mkdir=True), bucket_url(url).rstrip("/")


def write_atomically(fs: fsspec.AbstractFileSystem, path: str, payload: bytes) -> None:
    """Readers see the old object or the new one, never part of one."""
    if "file" not in fs.protocol:
        fs.pipe_file(path, payload)  # one PUT: S3 shows the object only when it is complete
        return
    folder, name = path.rsplit("/", 1)
    temporary = f"{folder}/.{name}.writing"  # hidden: dataset readers skip dot files
    # plain os calls: fsspec's local makedirs, pipe and mv took twice as long for a first
    # export's thousands of day files (3,300 files: 0.62 s against 0.33 s)
    os.makedirs(folder, exist_ok=True)
    with open(temporary, "wb") as file:
        file.write(payload)
    _publish(temporary, path)


def _publish(temporary: str, path: str) -> None:
    """The atomic step of a local write: a crash before it leaves only the hidden temporary file,
    which readers skip and the next write of the same file replaces."""
    os.replace(temporary, path)


def write_json_atomically(fs: fsspec.AbstractFileSystem, path: str, value: Any) -> None:
    write_atomically(fs, path, json.dumps(value, indent=2).encode())


def read_json(fs: fsspec.AbstractFileSystem, path: str) -> Any | None:
    """The JSON document at `path`, or None when there is none yet."""
    return json.loads(fs.cat_file(path)) if fs.exists(path) else None


def write_parquet_atomically(
    fs: fsspec.AbstractFileSystem, path: str, data: pa.Table, **options: Any
) -> None:
    """`data` as one zstd parquet object (`options` go to pyarrow's write_table)."""
    sink = pa.BufferOutputStream()
    pq.write_table(data, sink, compression="zstd", **options)
    write_atomically(fs, path, sink.getvalue().to_pybytes())


def arrow_filesystem(fs: fsspec.AbstractFileSystem) -> pafs.FileSystem:
    """pyarrow's own filesystem for local folders: ten times faster than the fsspec bridge
    when writing hundreds of date partitions (measured: 0.4 s against 3.5 s)."""
    if "file" in fs.protocol:
        return pafs.LocalFileSystem()
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs))
