"""Where cassettes live on disk, and how they get there safely.

Names come from the test's name and its parametrize ids *minus the transport id*,
because one recording serves both transports. Writes are atomic: a temporary file in
the same folder (named with the writer's pid), flushed and fsynced, then renamed over
the target. Processes that record into one cassette at once (``pytest -n``) take turns
through :class:`CassetteLock`, an OS lock on a lock file beside the cassette.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..errors import CassetteFormatError, CassetteLockTimeout, CassettePathError
from .codec import check_replayable, decode_cassette, encode_cassette
from .model import Cassette

if sys.platform == "win32":  # pragma: no cover
    import msvcrt
else:
    import fcntl

#: Longest file stem written; longer names keep a prefix and gain a short hash.
MAX_STEM_LENGTH = 120

_UNSAFE = re.compile(r"[^A-Za-z0-9_.=+,-]+")


def clean_name(raw: str) -> str:
    """Make ``raw`` a portable file stem: safe characters, no leading dot, capped length."""
    cleaned = _UNSAFE.sub("_", raw).strip("._") or "cassette"
    if len(cleaned) <= MAX_STEM_LENGTH:
        return cleaned
    digest = hashlib.sha1(raw.encode("utf-8")).hexdigest()[:10]
    return f"{cleaned[: MAX_STEM_LENGTH - 11]}-{digest}"


def cassette_stem(function_name: str, param_ids: Sequence[str]) -> str:
    """The file stem for a test: ``test_x`` or ``test_x[id1-id2]`` cleaned for the file system."""
    raw = f"{function_name}[{'-'.join(param_ids)}]" if param_ids else function_name
    return clean_name(raw)


def cassette_path(directory: Path, module: str, stem: str) -> Path:
    """``<directory>/<module>/<stem>.json``."""
    return directory / clean_name(module) / f"{stem}.json"


def check_cassette_path(path: Path) -> None:
    """Raise :class:`CassettePathError` if no cassette file can live at ``path``."""
    if path.exists() and not path.is_file():
        kind = "a directory" if path.is_dir() else "not a regular file"
        raise CassettePathError(path, f"it is {kind}, not a cassette file")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise CassettePathError(path, f"{parent} is a file, not a folder")
            return


def load_cassette(path: Path) -> Cassette:
    """Read and validate the cassette at ``path`` (which must exist) for replay."""
    return decode_cassette_file(read_cassette_bytes(path), path)


def read_cassette_bytes(path: Path) -> bytes:
    """The bytes of the cassette file at ``path``; a path that is not a readable file is a
    :class:`CassettePathError` saying why."""
    check_cassette_path(path)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CassettePathError(path, f"it cannot be read ({exc.strerror or exc})") from None


def decode_cassette_file(data: bytes, path: Path) -> Cassette:
    """Decode and validate the bytes of the cassette file at ``path`` (named in every error)."""
    try:
        cassette = decode_cassette(data, path)
    except UnicodeDecodeError as exc:
        raise CassetteFormatError(path, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    check_replayable(cassette, path)
    return cassette


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_cassette_atomically(path: Path, cassette: Cassette) -> None:
    """Write ``cassette`` to ``path`` so readers see the old file or the new one, never a part.

    Temporary files that writers killed mid-write left beside ``path`` are removed first.
    """
    text = encode_cassette(cassette)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(path)
    # The pid in the name tells a live writer's file from one a killed writer left behind.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file 0600; a cassette is shared project data, so keep the
        # old file's mode or give a new one the umask's default.
        os.chmod(tmp_name, path.stat().st_mode & 0o777 if path.exists() else _default_mode())
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise


#: A temporary file without a pid in its name (older versions) counts as stale after this long.
UNNAMED_TEMP_STALE_S = 3600.0


def remove_stale_temp_files(path: Path) -> list[Path]:
    """Delete the temporary files of writes to ``path`` whose writer is gone; return them.

    A file whose name carries the pid of a running process is left alone: it may belong
    to a write in progress.
    """
    removed = []
    prefix = f".{path.name}."
    for name in glob.glob(glob.escape(str(path.parent / prefix)) + "*.tmp"):
        candidate = Path(name)
        pid_text = candidate.name[len(prefix) :].split(".", 1)[0]
        if pid_text.isdigit():
            if _process_alive(int(pid_text)):
                continue
        else:
            with contextlib.suppress(OSError):
                if time.time() - candidate.stat().st_mtime < UNNAMED_TEMP_STALE_S:
                    continue
        with contextlib.suppress(OSError):  # on Windows an open (live) file cannot be deleted
            candidate.unlink()
            removed.append(candidate)
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if sys.platform == "win32":  # pragma: no cover - Windows refuses to delete a file still open
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, owned by someone else
        return True
    return True


class CassetteLock:
    """An exclusive lock on one cassette, shared by every process on this machine.

    The lock is an OS lock (``flock`` on POSIX, ``msvcrt.locking`` on Windows) on
    ``.<cassette name>.lock`` beside the cassette, so a process that dies releases it.
    The holder writes its pid into the file (for the message of a waiter that gives up)
    and, on POSIX, deletes the file when it releases the lock: a waiter that then gets
    the lock on the deleted file notices, and starts over on the current one.
    """

    #: How often a waiter retries (seconds): first and at most.
    POLL_S = (0.005, 0.05)

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name(f".{path.name}.lock")
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def acquire(self, timeout_s: float) -> None:
        """Take the lock, waiting at most ``timeout_s``; raise :class:`CassetteLockTimeout`."""
        if self._fd is not None:
            return
        deadline = time.monotonic() + timeout_s
        pause = self.POLL_S[0]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                while not _try_lock(fd):
                    if time.monotonic() >= deadline:
                        raise CassetteLockTimeout(self.path, timeout_s, self._holder())
                    time.sleep(pause)
                    pause = min(pause * 2, self.POLL_S[1])
                if self._is_current(fd):
                    os.ftruncate(fd, 0)
                    os.write(fd, f"{os.getpid()}\n".encode())
                    self._fd = fd
                    return
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)  # the holder deleted this file as it released it: start over

    def release(self) -> None:
        """Let the next process have the lock (does nothing if it is not held)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if sys.platform == "win32":  # pragma: no cover
            with contextlib.suppress(OSError):
                os.lseek(fd, 0, os.SEEK_SET)
                msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
            os.close(fd)
            with contextlib.suppress(OSError):  # another process may have it open already
                os.unlink(self.lock_path)
            return
        with contextlib.suppress(OSError):
            os.unlink(self.lock_path)  # while still locked, so a waiter on it will start over
        os.close(fd)

    @contextlib.contextmanager
    def hold(self, timeout_s: float) -> Iterator[CassetteLock]:
        """The lock for the duration of a ``with`` block."""
        self.acquire(timeout_s)
        try:
            yield self
        finally:
            self.release()

    def _is_current(self, fd: int) -> bool:
        try:
            current = os.stat(self.lock_path)
        except FileNotFoundError:
            return False
        mine = os.fstat(fd)
        return (current.st_dev, current.st_ino) == (mine.st_dev, mine.st_ino)

    def _holder(self) -> str:
        with contextlib.suppress(OSError, ValueError):
            pid = int(self.lock_path.read_text(encoding="ascii").strip())
            return f"another process (pid {pid})"
        return "another process"


def _try_lock(fd: int) -> bool:
    if sys.platform == "win32":  # pragma: no cover
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (BlockingIOError, PermissionError):
        return False
    return True
