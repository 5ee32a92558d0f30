"""Unit tests of ``cassette.store``: file names, atomic writes, loading."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_responses_ws.cassette import store
from pytest_responses_ws.cassette.codec import encode_cassette
from pytest_responses_ws.cassette.model import Cassette, RecordedEvent, RecordedWith, Turn
from pytest_responses_ws.cassette.store import (
    MAX_STEM_LENGTH,
    CassetteLock,
    cassette_path,
    cassette_stem,
    check_cassette_path,
    clean_name,
    load_cassette,
    write_cassette_atomically,
)
from pytest_responses_ws.config import parse_lock_timeout
from pytest_responses_ws.errors import CassetteFormatError, CassetteLockTimeout, CassettePathError

_PORTABLE = re.compile(r"[A-Za-z0-9_.=+,-]+")


def _cassette(text: str = "hello") -> Cassette:
    turn = Turn(
        request={"model": "gpt-5.2", "input": text},
        events=(
            RecordedEvent(0.5, {"type": "response.output_text.delta", "delta": text}),
            RecordedEvent(1.25, {"type": "response.completed", "response": {"id": "resp_1"}}),
        ),
    )
    return Cassette(
        turns=(turn,),
        recorded_with=RecordedWith("0.1.0", "ws"),
        recorded_at="2026-11-02T10:00:00Z",
    )


# -- clean_name -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("test_plain", "test_plain"),
        ("test_x[a b]", "test_x_a_b"),
        ("test_x[gpt-5.2-ws]", "test_x_gpt-5.2-ws"),
        ("test_x[a/b\\c]", "test_x_a_b_c"),
        ("test_x[a   b]", "test_x_a_b"),
        ("test_ünïcødé[日本]", "test__n_c_d"),
        (".hidden", "hidden"),
        ("..", "cassette"),
        ("", "cassette"),
        ("[]", "cassette"),
        ("../../etc/passwd", "etc_passwd"),
        ("a=1,b+2", "a=1,b+2"),
    ],
)
def test_clean_name_examples(raw: str, cleaned: str) -> None:
    assert clean_name(raw) == cleaned


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(st.text(max_size=300))
def test_clean_name_is_always_portable(raw: str) -> None:
    cleaned = clean_name(raw)
    assert _PORTABLE.fullmatch(cleaned)
    assert not cleaned.startswith(".")
    assert 0 < len(cleaned) <= MAX_STEM_LENGTH
    assert cleaned not in (".", "..")
    assert clean_name(raw) == cleaned  # stable


def test_long_names_are_capped_with_a_stable_hash() -> None:
    raw = "test_long[" + "x" * 300 + "]"
    cleaned = clean_name(raw)
    assert len(cleaned) == MAX_STEM_LENGTH
    assert cleaned.startswith("test_long_xxx")
    assert re.fullmatch(r".*-[0-9a-f]{10}", cleaned)
    assert clean_name(raw) == cleaned


def test_long_names_differing_only_at_the_end_stay_distinct() -> None:
    prefix = "test_long[" + "y" * 200
    first, second = clean_name(prefix + "-a]"), clean_name(prefix + "-b]")
    assert first != second
    assert len(first) == len(second) == MAX_STEM_LENGTH
    assert first[:100] == second[:100]


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(
    st.text(alphabet="ab-_.=", min_size=125, max_size=200),
    st.text(alphabet="ab-_.=", min_size=125, max_size=200),
)
def test_distinct_long_inputs_give_distinct_names(first: str, second: str) -> None:
    # Both are made of safe characters and longer than the cap, so both get a hash suffix.
    first, second = f"t{first}t", f"t{second}t"
    if first != second:
        assert clean_name(first) != clean_name(second)
    assert len(clean_name(first)) == MAX_STEM_LENGTH


def test_name_at_the_limit_is_kept_whole() -> None:
    raw = "t" * MAX_STEM_LENGTH
    assert clean_name(raw) == raw
    assert len(clean_name(raw + "t")) == MAX_STEM_LENGTH
    assert clean_name(raw + "t") != raw


# -- stems and paths ----------------------------------------------------------------------------------


def test_stem_without_ids_is_the_function_name() -> None:
    assert cassette_stem("test_agent_loop", []) == "test_agent_loop"


def test_stem_with_ids_joins_them_and_cleans() -> None:
    assert cassette_stem("test_agent_loop", ["gpt-5.2", "two tools"]) == "test_agent_loop_gpt-5.2-two_tools"
    assert cassette_stem("test_x", ["a/b"]) == "test_x_a_b"


def test_stems_for_different_ids_differ() -> None:
    assert cassette_stem("test_x", ["1"]) != cassette_stem("test_x", ["2"])
    assert cassette_stem("test_x", ["1"]) != cassette_stem("test_x", [])


def test_cassette_path_layout(tmp_path: Path) -> None:
    path = cassette_path(tmp_path, "test_module", "test_x_a")
    assert path == tmp_path / "test_module" / "test_x_a.json"


def test_cassette_path_cleans_the_module(tmp_path: Path) -> None:
    path = cassette_path(tmp_path, "../evil mod", "stem")
    assert path.parent.parent == tmp_path
    assert path.parent.name == "evil_mod"


# -- write and load -----------------------------------------------------------------------------------


def test_write_then_load_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "test_x.json"
    cassette = _cassette("ünïcødé 🎉")
    write_cassette_atomically(path, cassette)
    assert load_cassette(path) == cassette
    assert path.read_bytes() == encode_cassette(cassette).encode("utf-8")
    assert b"\r\n" not in path.read_bytes()


def test_write_replaces_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "test_x.json"
    write_cassette_atomically(path, _cassette("old"))
    write_cassette_atomically(path, _cassette("new"))
    assert load_cassette(path) == _cassette("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test_x.json"]


def test_failed_rename_keeps_the_old_file_and_removes_the_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "test_x.json"
    write_cassette_atomically(path, _cassette("old"))
    before = path.read_bytes()

    def failing_replace(src: object, dst: object) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(store.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk on fire"):
        write_cassette_atomically(path, _cassette("new"))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test_x.json"]


def test_interrupt_during_fsync_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "test_x.json"
    write_cassette_atomically(path, _cassette("old"))
    before = path.read_bytes()

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(store.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_cassette_atomically(path, _cassette("new"))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test_x.json"]


def test_encoding_failure_touches_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "test_x.json"
    write_cassette_atomically(path, _cassette("old"))
    before = path.read_bytes()

    def failing_encode(cassette: Cassette) -> str:
        raise ValueError("cannot encode")

    monkeypatch.setattr(store, "encode_cassette", failing_encode)
    with pytest.raises(ValueError, match="cannot encode"):
        write_cassette_atomically(path, _cassette("new"))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test_x.json"]


def test_first_write_failure_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "test_x.json"

    def failing_replace(src: object, dst: object) -> None:
        raise OSError("nope")

    monkeypatch.setattr(store.os, "replace", failing_replace)
    with pytest.raises(OSError, match="nope"):
        write_cassette_atomically(path, _cassette())
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_load_rejects_non_utf8(tmp_path: Path) -> None:
    path = tmp_path / "test_x.json"
    path.write_bytes(b'{"format": "\xff\xfe"}')
    with pytest.raises(CassetteFormatError) as info:
        load_cassette(path)
    assert info.value.path == path
    assert info.value.pointer == ""
    assert "not UTF-8" in str(info.value)
    assert str(path) in str(info.value)


def test_load_reports_the_file_on_format_errors(tmp_path: Path) -> None:
    path = tmp_path / "test_x.json"
    path.write_text("{}", encoding="utf-8")
    with pytest.raises(CassetteFormatError) as info:
        load_cassette(path)
    assert info.value.path == path
    assert info.value.pointer == "/format"
    assert str(path) in str(info.value)


# --------------------------------------------------------------------------- paths, temp files, locks


def test_a_directory_at_the_cassette_path_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "test_x.json"
    path.mkdir()
    with pytest.raises(CassettePathError, match=r"test_x.json: it is a directory, not a cassette file"):
        check_cassette_path(path)
    with pytest.raises(CassettePathError):
        load_cassette(path)


def test_a_file_where_the_cassette_folder_should_be_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "cassettes").write_text("")
    with pytest.raises(CassettePathError, match=r"cassettes is a file, not a folder"):
        check_cassette_path(tmp_path / "cassettes" / "test_mod" / "test_x.json")


def _exited_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_temp_files_of_dead_writers_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    dead = tmp_path / f".c.json.{_exited_pid()}.abcd1234.tmp"
    dead.write_text("{")
    live_writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        live = tmp_path / f".c.json.{live_writer.pid}.abcd1234.tmp"
        live.write_text("{")
        other = tmp_path / f".other.json.{_exited_pid()}.abcd1234.tmp"
        other.write_text("{")
        write_cassette_atomically(path, _cassette())
        assert not dead.exists()
        assert live.exists() and other.exists()
        assert load_cassette(path) == _cassette()
    finally:
        live_writer.kill()
        live_writer.wait()


def test_a_write_names_its_temp_file_with_its_pid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names: list[str] = []
    real_replace = os.replace

    def spy(source: str, target: Path) -> None:
        names.append(Path(source).name)
        real_replace(source, target)

    monkeypatch.setattr(store.os, "replace", spy)
    write_cassette_atomically(tmp_path / "c.json", _cassette())
    assert names and names[0].startswith(f".c.json.{os.getpid()}.") and names[0].endswith(".tmp")


def test_the_cassette_lock_excludes_a_second_holder_and_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "c.json"
    first, second = CassetteLock(path), CassetteLock(path)
    first.acquire(1)
    assert first.held and first.lock_path.exists()
    with pytest.raises(CassetteLockTimeout, match=rf"pid {os.getpid()}\) to finish recording"):
        second.acquire(0.05)
    assert not second.held
    first.release()
    assert not first.lock_path.exists()
    with second.hold(1):
        assert second.held
    assert not second.held and not second.lock_path.exists()


HOLD_LOCK = """
import sys, time
from pathlib import Path
from pytest_responses_ws.cassette.store import CassetteLock
lock = CassetteLock(Path(sys.argv[1]))
lock.acquire(5)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
lock.release()
"""


def test_the_cassette_lock_waits_for_another_process_and_then_gets_it(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path), "0.3"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        lock = CassetteLock(path)
        with pytest.raises(CassetteLockTimeout):
            lock.acquire(0.05)
        lock.acquire(5)  # the holder releases after 0.3 s
        assert lock.held
        lock.release()
    finally:
        holder.wait(5)


def test_a_killed_holder_releases_the_cassette_lock(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path), "30"], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait(5)
    with CassetteLock(path).hold(2) as lock:
        assert lock.held


KILLED_MID_WRITE = """
import os, sys, time
from pathlib import Path
from pytest_responses_ws.cassette import store
from pytest_responses_ws.cassette.model import Cassette, RecordedWith

def stall(fd):
    print("writing", flush=True)
    time.sleep(30)

store.os.fsync = stall
store.write_cassette_atomically(Path(sys.argv[1]), Cassette((), RecordedWith("0"), "now"))
"""


def test_a_write_killed_midway_leaves_the_cassette_whole_and_its_temp_file_is_cleaned_later(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.json"
    write_cassette_atomically(path, _cassette("before"))
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_MID_WRITE, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
    writer.kill()
    writer.wait(5)
    (leftover,) = tmp_path.glob(".c.json.*.tmp")
    assert leftover.name.startswith(f".c.json.{writer.pid}.")
    assert load_cassette(path) == _cassette("before")
    write_cassette_atomically(path, _cassette("after"))
    assert not leftover.exists()
    assert load_cassette(path) == _cassette("after")


@pytest.mark.parametrize(("value", "seconds"), [("300", 300.0), ("0.25", 0.25), ("0", 0.0), (12, 12.0)])
def test_lock_timeout_values(value: object, seconds: float) -> None:
    assert parse_lock_timeout(value, "--rws-lock-timeout") == seconds


@pytest.mark.parametrize("value", ["-1", "soon", "nan", "inf", None])
def test_a_bad_lock_timeout_is_a_usage_error(value: object) -> None:
    with pytest.raises(pytest.UsageError, match="must be a number of seconds such as 300"):
        parse_lock_timeout(value, "--rws-lock-timeout")
