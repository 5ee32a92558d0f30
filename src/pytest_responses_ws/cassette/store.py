"""Where cassettes live on disk, and how they get there safely.

Names come from the test's name and its parametrize ids *minus the transport id*,
because one recording serves both transports. Writes are atomic: a temporary file in
the same folder, flushed and fsynced, then renamed over the target.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..errors import CassetteFormatError
from .codec import decode_cassette, encode_cassette
from .model import Cassette

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


def load_cassette(path: Path) -> Cassette:
    """Read and validate the cassette at ``path`` (which must exist)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CassetteFormatError(path, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    return decode_cassette(text, path)


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_cassette_atomically(path: Path, cassette: Cassette) -> None:
    """Write ``cassette`` to ``path`` so readers see the old file or the new one, never a part."""
    text = encode_cassette(cassette)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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
