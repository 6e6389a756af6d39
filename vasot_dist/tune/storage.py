"""Where a sweep keeps its results: a local folder, a network mount or an object store.

Multi-node sweeps need storage every node sees (Ray Train uploads checkpoints there and restores from it),
so a local-disk path on a cluster of more than one node is refused before any trial starts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

# Filesystem types that several machines can mount at once (from /proc/mounts). fuse.* (s3fs, gcsfuse,
# juicefs, sshfs, mountpoint-s3, ...) is taken as shared too: we cannot tell a local FUSE mount apart.
NETWORK_FILESYSTEMS = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "lustre", "gpfs", "beegfs", "ceph", "cephfs", "glusterfs", "wekafs",
    "panfs", "ocfs2", "gfs2", "afs", "pvfs2", "orangefs", "fuse",
})


def is_uri(path: str) -> bool:
    """True for ``s3://``, ``gs://``, ``abfs://``, ``hdfs://``... (a local path otherwise, ``file://`` too)."""
    return "://" in path and not path.startswith("file://")


def resolve_storage(path: str | None, default: Path) -> str:
    """An absolute local path or a URI (trailing '/' removed); ``default`` when ``path`` is None."""
    if path is None:
        return str(default.expanduser().resolve())
    if is_uri(path):
        return path.rstrip("/")
    if path.startswith("file://"):
        path = path[len("file://"):]
    return str(Path(path).expanduser().resolve())


def _unescape(field: str) -> str:
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def filesystem_type(path: str, mounts: str | None = None) -> str:
    """The filesystem type of the mount holding ``path`` (longest mount-point prefix in ``/proc/mounts``).

    ``mounts`` is the text of ``/proc/mounts`` (read when None); ``"unknown"`` where it cannot be read.
    """
    if mounts is None:
        try:
            mounts = Path("/proc/mounts").read_text()
        except OSError:
            return "unknown"
    p = Path(path)
    best, fstype = "", "unknown"
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        mnt = _unescape(fields[1])
        inside = p == Path(mnt) or Path(mnt) in p.parents
        if inside and len(mnt) > len(best):
            best, fstype = mnt, fields[2]
    return fstype


def is_shared(path: str, mounts: str | None = None) -> bool:
    """True when ``path`` is a URI or lies on a network / FUSE filesystem."""
    if is_uri(path):
        return True
    fstype = filesystem_type(path, mounts)
    return fstype in NETWORK_FILESYSTEMS or fstype.startswith("fuse.")


def check_multinode_storage(path: str, alive_nodes: int, mounts: str | None = None, *,
                            asserted_shared: bool = False) -> None:
    """Refuse a local-disk ``path`` when the cluster has more than one alive node, unless the user asserts that
    every node sees it (``asserted_shared``, ``tune.shared_storage``): a filesystem type this check does not
    know, or several nodes on one host.

    Raises:
        ValueError: naming the path, its filesystem type, the number of nodes and the way out.
    """
    if alive_nodes <= 1 or asserted_shared or is_shared(path, mounts):
        return
    raise ValueError(
        f"storage path '{path}' is on a local disk ({filesystem_type(path, mounts)}), but the Ray cluster has "
        f"{alive_nodes} alive nodes: trials on other nodes could neither write their checkpoints there nor "
        "restore from them. Pass --storage-path (or tune.storage_path) on shared storage: a network "
        "filesystem mounted at the same path on every node (NFS, Lustre, ...) or an object store "
        "(s3://bucket/prefix, gs://bucket/prefix). If every node does see this path (a filesystem this check "
        "does not know, or nodes on one host), set tune.shared_storage=true."
    )


def _fs(uri: str):
    import pyarrow.fs

    return pyarrow.fs.FileSystem.from_uri(uri)


def write_json(uri: str, obj: Any) -> None:
    """Write ``obj`` as JSON to a local path or a URI (pyarrow filesystems, as Ray uses)."""
    fs, path = _fs(uri)
    fs.create_dir(os.path.dirname(path), recursive=True)
    with fs.open_output_stream(path) as f:
        f.write(json.dumps(obj, indent=2).encode())


def read_json(uri: str) -> Any | None:
    """The JSON object at ``uri``, or None when there is no such file."""
    import pyarrow.fs

    fs, path = _fs(uri)
    if fs.get_file_info(path).type != pyarrow.fs.FileType.File:
        return None
    with fs.open_input_stream(path) as f:
        return json.loads(f.read().decode())
