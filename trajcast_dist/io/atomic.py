"""Atomic writes: write to a temporary file beside the target, then rename, so a killed process never
leaves a half-written checkpoint, restart frame or dataset under the final name."""

import contextlib
import os
import re
import shutil
from pathlib import Path

from trajcast_dist.errors import UserError

__all__ = ["atomic_path", "check_writable", "check_distinct", "remove_stale_temporaries", "temporary_name"]


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path; on success it replaces `path` in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path, "tmp")
    tmp = temporary_name(path, "tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def temporary_name(path, kind: str) -> Path:
    """`.NAME.<kind><pid>` beside `path`: hidden, and owned by this process."""
    path = Path(path)
    return path.with_name(f".{path.name}.{kind}{os.getpid()}")


def remove_stale_temporaries(path, kind: str) -> None:
    """Remove `.NAME.<kind><pid>` files or folders left beside `path` by killed processes of this host (a
    SIGKILL gives no chance to clean up); those of live processes stay."""
    path = Path(path)
    pattern = re.compile(rf"\.{re.escape(path.name)}\.{re.escape(kind)}(\d+)")
    if not path.parent.is_dir():
        return
    for entry in path.parent.iterdir():
        match = pattern.fullmatch(entry.name)
        if match and not _alive(int(match.group(1))):
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)


def check_writable(path, overwrite: bool, what: str = "output") -> Path:
    """A file path that can be written: not a directory, in a directory that exists, and not an existing file
    unless --overwrite was given."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{what} {path} is a directory; give a file name")
    if not path.parent.is_dir():
        raise UserError(f"{what} {path}: directory {path.parent} does not exist; create it first")
    if path.exists() and not overwrite:
        raise UserError(f"{what} {path} already exists; pass --overwrite to replace it")
    return path


def check_distinct(paths: dict) -> None:
    """Refuse two files (flag → path, None for unused flags) that are one: writing one would destroy the other."""
    seen = {}
    for flag, path in paths.items():
        if path is None:
            continue
        key = Path(path).resolve()
        if key in seen:
            raise UserError(f"{seen[key]} and {flag} are the same file ({path}); give them different names")
        seen[key] = flag


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        pass
    return True
