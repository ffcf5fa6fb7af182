"""Hostile exports: nothing is written outside --into, nothing past the limits is read, all is listed.

Each attack comes with a control showing the entry really is what it claims (a naive extraction
escapes, the entry is a link, the bytes expand past the limit)."""

from __future__ import annotations

import os
import stat
import zipfile
import zlib
from pathlib import Path

import pytest
from lms_exports import add_symlink, canvas, notebook_bytes, tag_of, write_zip

from grader.cli import main
from grader.errors import LmsError
from grader.lms import archive
from grader.lms.archive import Limits, open_export
from grader.lms.collect import collect
from grader.lms.roster import parse_roster

SEQ = "02_seq2seq"
GOOD = canvas("lovelaceada", 101, 5001, "seq2seq.ipynb")


def every_file(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def naive_extract(zip_path: Path, dest: Path) -> list[Path]:
    """What a careless script does: join the entry name to the destination and write."""
    written = []
    with zipfile.ZipFile(zip_path) as z:
        for info in z.infolist():
            target = Path(os.path.normpath(os.path.join(dest, info.filename)))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(z.read(info))
            written.append(target)
    return written


SLIPS = ["../../" + canvas("babbageben", 102, 5002, "seq2seq.ipynb"),
         "folder/../../../" + canvas("hoppercat", 103, 5003, "seq2seq.ipynb"),
         "/tmp/" + canvas("dijkstradan", 105, 5004, "seq2seq.ipynb"),
         "..\\..\\" + canvas("turingal", 106, 5005, "seq2seq.ipynb"),
         "C:/Users/" + canvas("hamiltonmargaret", 107, 5006, "seq2seq.ipynb")]


def test_path_traversal_entries_are_refused_and_listed(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    export = write_zip(tmp_path / "a" / "b" / "export.zip",
                       {GOOD: notebook_bytes("ada"), **{name: notebook_bytes("attack") for name in SLIPS}})
    into = tmp_path / "a" / "b" / "into"
    before = every_file(tmp_path)
    result = collect(export, SEQ, into)
    assert [p.student for p in result.placed] == ["101"]
    assert {u.entry: u.why for u in result.unplaced} == {
        SLIPS[0]: "refused: path leaves the export (`..`)", SLIPS[1]: "refused: path leaves the export (`..`)",
        SLIPS[2]: "refused: absolute path", SLIPS[3]: "refused: path leaves the export (`..`)",
        SLIPS[4]: "refused: absolute path"}
    new = every_file(tmp_path) - before
    assert all(name.startswith("a/b/into") for name in new), new
    assert not Path("/tmp", canvas("dijkstradan", 105, 5004, "seq2seq.ipynb")).exists()

    # control: the `..` entry really escapes a naive extraction
    sandbox = tmp_path / "control" / "x" / "y" / "dest"
    sandbox.mkdir(parents=True)
    with zipfile.ZipFile(tmp_path / "slip.zip", "w") as z:
        z.writestr(SLIPS[0], b"attack")
    escaped = naive_extract(tmp_path / "slip.zip", sandbox)
    assert sandbox not in escaped[0].parents and escaped[0].read_bytes() == b"attack"


def test_symlink_entries_are_refused(tmp_path):
    export = write_zip(tmp_path / "export.zip", {GOOD: notebook_bytes("ada")})
    link = canvas("babbageben", 102, 5002, "seq2seq.ipynb")
    add_symlink(export, link, "/etc/passwd")
    into = tmp_path / "into"
    result = collect(export, SEQ, into)
    assert [(u.entry, u.why) for u in result.unplaced] == [(link, "refused: a symbolic link")]
    assert every_file(into) == {"101", "101/02_seq2seq", "101/02_seq2seq/seq2seq.ipynb", "collect-manifest.json"}
    # control: the entry is stored as a link to /etc/passwd
    with zipfile.ZipFile(export) as z:
        info = z.getinfo(link)
        assert stat.S_ISLNK(info.external_attr >> 16) and z.read(info) == b"/etc/passwd"


def test_oversized_entry_is_refused_by_its_header(tmp_path):
    bomb = canvas("babbageben", 102, 5002, "seq2seq.ipynb")
    export = write_zip(tmp_path / "export.zip", {GOOD: notebook_bytes("ada"), bomb: b"\x00" * (4 * 2**20)})
    limits = Limits(entry_bytes=2**20)
    result = collect(export, SEQ, tmp_path / "into", limits=limits)
    assert [u.entry for u in result.unplaced] == [bomb]
    assert "over the 1,048,576-byte limit" in result.unplaced[0].why
    # control: a few kilobytes that expand past the limit
    with zipfile.ZipFile(export) as z:
        info = z.getinfo(bomb)
        assert info.compress_size < 10_000 and len(z.read(info)) > limits.entry_bytes


def lying_bomb(path: Path, name: str, real_size: int, claimed: int) -> Path:
    """A zip whose entry claims `claimed` bytes but inflates to `real_size` (headers patched by hand)."""
    data = b"\x00" * real_size
    stream = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = stream.compress(data) + stream.flush()
    crc = zlib.crc32(data)
    raw = name.encode()
    local = (b"PK\x03\x04" + (20).to_bytes(2, "little") + b"\x00\x00" + (8).to_bytes(2, "little") + b"\x00\x00\x21\x5a"
             + crc.to_bytes(4, "little") + len(packed).to_bytes(4, "little") + claimed.to_bytes(4, "little")
             + len(raw).to_bytes(2, "little") + b"\x00\x00" + raw)
    central = (b"PK\x01\x02" + (20).to_bytes(2, "little") + (20).to_bytes(2, "little") + b"\x00\x00"
               + (8).to_bytes(2, "little") + b"\x00\x00\x21\x5a" + crc.to_bytes(4, "little")
               + len(packed).to_bytes(4, "little") + claimed.to_bytes(4, "little") + len(raw).to_bytes(2, "little")
               + b"\x00\x00" * 3 + b"\x00\x00" + ((stat.S_IFREG | 0o644) << 16).to_bytes(4, "little")
               + (0).to_bytes(4, "little") + raw)
    end = (b"PK\x05\x06" + b"\x00\x00" * 2 + (1).to_bytes(2, "little") * 2 + len(central).to_bytes(4, "little")
           + (len(local) + len(packed)).to_bytes(4, "little") + b"\x00\x00")
    path.write_bytes(local + packed + central + end)
    return path


def test_a_header_that_lies_about_the_size_is_caught_while_reading(tmp_path):
    name = canvas("babbageben", 102, 5002, "seq2seq.ipynb")
    export = lying_bomb(tmp_path / "bomb.zip", name, real_size=8 * 2**20, claimed=1000)
    into = tmp_path / "into"
    assert main(["collect", str(export), "--assignment", SEQ, "--into", str(into)]) == 1
    with open_export(export) as opened:
        assert [e.size for e in opened.entries] == [1000], "the header claims 1000 bytes"
        with pytest.raises(zipfile.BadZipFile):
            opened.read(opened.entries[0])
    assert not into.exists()
    # control: the stored stream really inflates to 8 MiB
    raw = export.read_bytes()
    start = 30 + len(name.encode())
    assert len(zlib.decompressobj(-15).decompress(raw[start:])) == 8 * 2**20


def test_read_stops_at_the_limit_whatever_the_header_says(tmp_path):
    export = write_zip(tmp_path / "e.zip", {GOOD: b"x" * 5000})
    with open_export(export) as opened:
        with pytest.raises(archive.TooLarge):
            opened.read(opened.entries[0], limit=1000)


def test_total_size_and_entry_count_limits(tmp_path):
    files = {canvas(f"student{i}", 100 + i, 5000 + i, "seq2seq.ipynb"): notebook_bytes(str(i)) for i in range(5)}
    export = write_zip(tmp_path / "e.zip", files)
    with open_export(export, Limits(entries=3)) as opened:
        assert len(opened.entries) == 3 and all("more than 3 files" in r.why for r in opened.refused)
    size = len(notebook_bytes("0"))
    with open_export(export, Limits(total_bytes=2 * size + 1)) as opened:
        assert len(opened.entries) == 2 and all("in all" in r.why for r in opened.refused)


def test_folder_export_symlinks_are_refused(tmp_path):
    export = tmp_path / "export"
    export.mkdir()
    (export / GOOD).write_bytes(notebook_bytes("ada"))
    secret = tmp_path / "secret.ipynb"
    secret.write_bytes(notebook_bytes("secret"))
    link = canvas("babbageben", 102, 5002, "seq2seq.ipynb")
    (export / link).symlink_to(secret)
    (export / "linked_dir").symlink_to(tmp_path)
    into = tmp_path / "into"
    result = collect(export, SEQ, into)
    assert sorted((u.entry, u.why) for u in result.unplaced) == [
        (link, "refused: a symbolic link"), ("linked_dir", "refused: a symbolic link")]
    assert tag_of(into / "101/02_seq2seq/seq2seq.ipynb") == "ada" and not (into / "102").exists()
    assert (export / link).resolve() == secret, "control: the link does lead out of the export"


def test_unsafe_student_ids_from_a_roster_never_become_paths(tmp_path):
    export = write_zip(tmp_path / "e.zip", {GOOD: notebook_bytes("ada"),
                                            canvas("babbageben", 102, 5002, "seq2seq.ipynb"): notebook_bytes("ben")})
    roster = parse_roster("student_id,lms_id\n../../outside,101\n.hidden,102\n")
    result = collect(export, SEQ, tmp_path / "w" / "into", roster)
    assert not result.placed
    assert every_file(tmp_path) == {"e.zip"}, "nothing placed: nothing written"
    assert {u.why for u in result.unplaced} == {"the student id '../../outside' cannot be a folder name",
                                                   "the student id '.hidden' cannot be a folder name"}


def test_a_student_folder_that_is_a_link_is_refused_before_anything_is_written(tmp_path):
    export = write_zip(tmp_path / "e.zip", {GOOD: notebook_bytes("ada"),
                                            canvas("babbageben", 102, 5002, "seq2seq.ipynb"): notebook_bytes("ben")})
    outside = tmp_path / "outside"
    outside.mkdir()
    into = tmp_path / "into"
    into.mkdir()
    (into / "102").symlink_to(outside)
    with pytest.raises(LmsError, match="102 is a symbolic link"):
        collect(export, SEQ, into)
    assert list(outside.iterdir()) == [] and every_file(into) == {"102"}
