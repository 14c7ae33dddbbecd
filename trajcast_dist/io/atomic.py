"""Atomic writes: write to a temporary file beside the target, then rename, so a killed process never
leaves a half-written checkpoint, restart frame or dataset under the final name."""

import contextlib
import os
from pathlib import Path

from trajcast_dist.errors import UserError

__all__ = ["atomic_path", "check_writable"]


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path; on success it replaces `path` in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def check_writable(path, overwrite: bool, what: str = "output") -> Path:
    """Refuse to replace an existing file unless --overwrite was given."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise UserError(f"{what} {path} already exists; pass --overwrite to replace it")
    return path
