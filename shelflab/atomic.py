"""Atomic writes: write to a temp file in the target's directory, then rename over the target,
so a crash or a bad row never leaves a half-written output behind.

Outputs get the permissions a plain `open` would give them (0666 / 0777 minus the umask), not
the temp file's 0600. Temp names carry the writer's pid (`.<name>.<pid>.<random>`): the next
write of the same target removes those of writers that no longer run (a killed process)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from shelflab.errors import InputError


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temp path beside `target`; on success rename it over `target`, else delete it."""
    target = Path(target)
    _check_target(target, want_dir=False)
    remove_stale_temps(target)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.{os.getpid()}.", suffix=suffix or ".tmp", dir=target.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.is_file():
            os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield an empty temp directory beside `target`; on success it replaces `target` whole."""
    target = Path(target)
    _check_target(target, want_dir=True)
    remove_stale_temps(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", dir=target.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old.{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _check_target(target: Path, *, want_dir: bool) -> None:
    """InputError for an output path that cannot be written: a directory where a file goes, a
    file where a directory goes (never replaced), or a parent that is not a directory."""
    kind = "a directory" if want_dir else "a file"
    if target.exists() and target.is_dir() != want_dir:
        found = "a directory" if target.is_dir() else "a file"
        raise InputError(f"is {found}", path=target, expected=f"{kind} path for the output")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise InputError(
            "a parent of this path is a file", path=target, expected=f"{kind} path for the output"
        ) from None
    except PermissionError as exc:
        raise InputError(f"cannot create the folder ({exc.strerror})", path=target) from None


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


def remove_stale_temps(target: Path) -> int:
    """Delete the temp files and directories of `target` left by writers that no longer run
    (named `.<name>.<pid>.*` or `.<name>.old.<pid>`); returns how many were removed."""
    removed = 0
    prefix = f".{target.name}."
    for entry in target.parent.glob(f"{glob_escape(prefix)}*"):
        fields = entry.name[len(prefix) :].split(".")
        pid_text = fields[1] if fields[0] == "old" and len(fields) > 1 else fields[0]
        if not pid_text.isdigit() or _alive(int(pid_text)):
            continue  # not ours, or its writer is still at work
        if fields[0] == "old" and not target.exists():
            os.replace(entry, target)  # killed between its two renames: the old output is back
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed += 1
    return removed


def glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def write_parquet(df: pl.DataFrame, target: str | Path) -> None:
    with atomic_path(target, ".parquet") as tmp:
        df.write_parquet(tmp)


def write_json(obj: Any, target: str | Path) -> None:
    with atomic_path(target, ".json") as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n")


def write_text(text: str, target: str | Path) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
