"""Read a Debian ``Packages`` file (or ``apt-cache dumpavail``): names, synopses and debtags.

A ``Packages`` file is a sequence of RFC 822-style paragraphs (Debian's *deb822*
format, ``deb822(5)``) separated by empty lines; a field is ``Name: value`` and may
continue on following lines that start with a space or tab. Only three fields are read:
``Package``, the first line of ``Description`` (the synopsis) and ``Tag`` (the debtags,
comma-separated, often continued over several lines)::

    Package: 0ad
    Description: Real-time strategy game of ancient warfare
    Tag: game::strategy, interface::graphical, interface::x11, role::program,
     uitoolkit::sdl, uitoolkit::wxwidgets, use::gameplaying,
     x11::application

The reader streams the (decompressed) bytes in 1 MiB chunks and decodes only the
fields it keeps, so ``apt-cache dumpavail`` on a full Debian archive (63,666
paragraphs, 50 MB) is read in about a second. The compression is recognised by its
magic bytes, whatever the file is called: plain text, gzip, xz, bzip2, and lz4 (the
format of apt's own lists in ``/var/lib/apt/lists``) when the ``lz4`` package is
installed. Every problem is a :class:`PackagesFileError` naming the file and, where
there is one, the line.

A package that occurs in several paragraphs (several versions, as in a pool or in
concatenated lists) is kept **at its first paragraph**; the later ones are counted in
:attr:`PackagesFile.duplicates`. ``apt-cache dumpavail`` prints one paragraph per
package (apt's candidate version), so nothing is dropped there.
"""

from __future__ import annotations

import bz2
import dataclasses
import gzip
import hashlib
import lzma
import os
import re
import shutil
import subprocess
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["DUMPAVAIL", "Package", "PackagesFile", "PackagesFileError", "read_packages"]

#: What :func:`read_packages` reads when no path is given, and how the source is named.
DUMPAVAIL = "apt-cache dumpavail"

_CHUNK = 1 << 20
# deb822(5): a field name is printable US-ASCII other than ':' and does not start with '#' or '-'.
_FIELD = re.compile(rb"[!-\x22$-,.-9;-~][!-9;-~]*:")
_MAGIC = (  # (leading bytes, name); zstd is recognised only to say how to read it
    (b"\x1f\x8b", "gzip"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"BZh", "bzip2"),
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)
_HINT = (
    "Pass a Debian Packages file (plain, .gz, .xz, .bz2 or .lz4), e.g. a mirror's "
    "dists/<suite>/main/binary-<arch>/Packages.xz, or path=None to read apt's lists through `apt-cache dumpavail`."
)


class PackagesFileError(ValueError):
    """A ``Packages`` source that is missing, unreadable, truncated or malformed.

    :ivar source: the file, or ``"apt-cache dumpavail"``.
    :ivar line: the 1-based line of the (decompressed) text where the problem is, or ``None``.
    :ivar problem: what is wrong.
    """

    def __init__(self, source: object, problem: str, *, line: int | None = None, hint: str | None = _HINT) -> None:
        self.source = str(source)
        self.line = line
        self.problem = problem
        where = f"{self.source}, line {line}" if line is not None else self.source
        super().__init__(f"debian_packages: {where}: {problem}" + (f". {hint}" if hint else ""))

    def __reduce__(self):  # keep the fields through pickling (multiprocessing workers)
        return (_rebuild, (type(self), self.source, self.problem, self.line, self.args))


def _rebuild(cls, source, problem, line, args):
    error = cls.__new__(cls)
    ValueError.__init__(error, *args)
    error.source, error.problem, error.line = source, problem, line
    return error


@dataclasses.dataclass(frozen=True)
class Package:
    """One package with a ``Tag`` field.

    :param name: the ``Package`` field.
    :param synopsis: the first line of ``Description`` (empty if there is none).
    :param tags: the debtags, in file order, each once.
    :param line: the line of the paragraph's first field.
    """

    name: str
    synopsis: str
    tags: tuple[str, ...]
    line: int


@dataclasses.dataclass(frozen=True)
class PackagesFile:
    """What :func:`read_packages` found.

    :param source: the path read, or ``"apt-cache dumpavail"``.
    :param compression: ``"none"``, ``"gzip"``, ``"xz"``, ``"bzip2"`` or ``"lz4"``.
    :param tagged: the packages with a non-empty ``Tag`` field, in file order, each name once.
    :param packages: distinct package names seen (tagged or not).
    :param paragraphs: paragraphs read (``packages + duplicates``).
    :param duplicates: paragraphs dropped because their package occurred before.
    :param lines: lines of text read.
    :param sha256: sha256 of the decompressed text.
    """

    source: str
    compression: str
    tagged: tuple[Package, ...]
    packages: int
    paragraphs: int
    duplicates: int
    lines: int
    sha256: str


def read_packages(path: str | os.PathLike[str] | None = None) -> PackagesFile:
    """Read the tagged packages of a ``Packages`` file, or of ``apt-cache dumpavail`` when
    ``path`` is ``None``.

    :raises PackagesFileError: the file is missing, empty, compressed in an unreadable
        way, truncated, not deb822 text, or has a paragraph without ``Package``;
        ``apt-cache`` is missing or fails.
    """
    if path is None:
        return _read_dumpavail()
    source = Path(path)
    try:
        raw = open(source, "rb")  # closed below, after the decompressor
    except FileNotFoundError:
        raise PackagesFileError(source, "the file does not exist") from None
    except IsADirectoryError:
        raise PackagesFileError(source, "is a directory, not a Packages file") from None
    except OSError as error:
        raise PackagesFileError(source, f"cannot be opened ({error.strerror or error})") from None
    with raw:
        head = raw.peek(8)[:8]  # without consuming: a pipe (/dev/stdin) works too
        if not head:
            raise PackagesFileError(source, "the file is empty")
        compression, stream = _decompressor(source, raw, head)
        parser = _Parser(source, compression)
        with stream:
            parser.run(stream)
        return parser.result()


def _decompressor(source: Path, raw: IO[bytes], head: bytes) -> tuple[str, IO[bytes]]:
    compression = next((name for magic, name in _MAGIC if head.startswith(magic)), "none")
    if compression == "gzip":
        return compression, gzip.GzipFile(fileobj=raw, mode="rb")
    if compression == "xz":
        return compression, lzma.LZMAFile(raw)
    if compression == "bzip2":
        return compression, bz2.BZ2File(raw)
    if compression == "lz4":
        try:
            import lz4.frame  # optional: apt's own lists are lz4 frames
        except ImportError:
            raise PackagesFileError(
                source,
                "is lz4-compressed and the Python package lz4 is not installed",
                hint="`pip install lz4`, or decompress it with `lz4 -d`, or pass path=None to read apt's lists "
                "through `apt-cache dumpavail`.",
            ) from None
        return compression, lz4.frame.LZ4FrameFile(raw, mode="rb")
    if compression == "zstd":
        raise PackagesFileError(source, "is zstd-compressed", hint="Decompress it first (`unzstd FILE`).")
    return compression, raw


def _read_dumpavail() -> PackagesFile:
    executable = shutil.which("apt-cache")
    if executable is None:
        raise PackagesFileError(
            DUMPAVAIL,
            "apt-cache is not installed (not a Debian-based system?)",
            hint="Pass path= a Debian Packages file (plain, .gz, .xz, .bz2 or .lz4), e.g. a mirror's "
            "dists/<suite>/main/binary-<arch>/Packages.xz.",
        )
    parser = _Parser(DUMPAVAIL, "none")
    with tempfile.TemporaryFile() as errors:
        try:
            process = subprocess.Popen(  # a fixed command, no shell
                [executable, "dumpavail"], stdout=subprocess.PIPE, stderr=errors, stdin=subprocess.DEVNULL
            )
        except OSError as error:
            raise PackagesFileError(DUMPAVAIL, f"cannot run {executable} ({error.strerror or error})") from None
        try:
            with process.stdout:  # type: ignore[union-attr]
                try:
                    parser.run(process.stdout)  # type: ignore[arg-type]
                except PackagesFileError:
                    if parser.eof:  # all output read: a failed apt-cache explains it better
                        _check_exit(process, errors)
                    raise
            _check_exit(process, errors)
        finally:
            if process.poll() is None:  # stopped reading early (an error): do not wait for the rest
                process.kill()
            process.wait()
    return parser.result()


def _check_exit(process: subprocess.Popen, errors: IO[bytes]) -> None:
    """Raise if ``apt-cache dumpavail`` exited with an error (called once its output is read)."""
    code = process.wait()
    if code:
        errors.seek(0)
        message = " ".join(errors.read()[-2000:].decode("utf-8", "replace").split()) or "no message"
        raise PackagesFileError(
            DUMPAVAIL,
            f"exited with status {code}: {message}",
            hint="Run `apt-get update` (as root) first, or pass path= a Debian Packages file.",
        )


class _Paragraph:
    __slots__ = ("start", "package", "synopsis", "tags", "seen")

    def __init__(self, start: int) -> None:
        self.start = start
        self.package: bytes | None = None
        self.synopsis = b""
        self.tags: list[bytes] | None = None
        self.seen: list[bytes] = []


class _Parser:
    """One pass over the text: line-by-line deb822 paragraphs, keeping three fields."""

    def __init__(self, source: object, compression: str) -> None:
        self.source = source
        self.compression = compression
        self.digest = hashlib.sha256()
        self.tagged: list[Package] = []
        self.names: set[str] = set()
        self.paragraphs = 0
        self.duplicates = 0
        self.number = 0  # lines read so far
        self.eof = False  # the whole text was read

    def fail(self, problem: str, line: int | None = None) -> PackagesFileError:
        return PackagesFileError(self.source, problem, line=line)

    def lines(self, stream: IO[bytes]) -> Iterator[bytes]:
        """The lines of the decompressed text (without newline); decompression errors name
        the last line read."""
        what = "the file" if self.compression == "none" else f"the {self.compression} stream"
        tail = b""
        while True:
            try:
                chunk = stream.read(_CHUNK)
            except EOFError:
                raise PackagesFileError(
                    self.source, f"truncated: {what} ends early ({self.number} lines read)", hint="Download it again."
                ) from None
            except (OSError, zlib.error, lzma.LZMAError, RuntimeError, ValueError) as error:
                raise PackagesFileError(
                    self.source, f"{what} is corrupt ({self.number} lines read): {error}", hint="Download it again."
                ) from None
            if not chunk:
                self.eof = True
                break
            self.digest.update(chunk)
            lines = (tail + chunk).split(b"\n")
            tail = lines.pop()
            yield from lines
        if tail:
            yield tail

    def run(self, stream: IO[bytes]) -> None:
        paragraph: _Paragraph | None = None
        continuing: list[bytes] | None = None  # the Tag field's lines while it continues
        number = 0
        for line in self.lines(stream):
            number = self.number = number + 1
            if line[-1:] == b"\r":
                line = line[:-1]
            first = line[:1]
            if first == b" " or first == b"\t":
                if line.isspace():  # deb822(5) allows whitespace-only separator lines
                    if paragraph is not None:
                        self.finish(paragraph, number - 1)
                    paragraph = continuing = None
                elif paragraph is None:
                    raise self.fail("a continuation line (starting with a space) outside any paragraph", number)
                elif continuing is not None:
                    continuing.append(line)
                continue
            if not line:
                if paragraph is not None:
                    self.finish(paragraph, number - 1)
                paragraph = continuing = None
                continue
            match = _FIELD.match(line)
            if match is None:
                expected = "a 'Field: value' line" + (" or a continuation line" if paragraph is not None else "")
                hint = "" if paragraph is not None else "; is this a Debian Packages file?"
                raise self.fail(f"expected {expected}, got {_show(line)}{hint}", number)
            if paragraph is None:
                paragraph = _Paragraph(number)
            colon = match.end() - 1
            continuing = None
            field = line[:colon]
            if field == b"Package" or field == b"Tag" or field == b"Description":
                if field in paragraph.seen:
                    raise self.fail(
                        f"a second {field.decode()} field in the paragraph starting at line {paragraph.start}", number
                    )
                paragraph.seen.append(field)
                value = line[colon + 1 :].strip()
                if field == b"Package":
                    if not value:
                        raise self.fail("an empty Package field", number)
                    paragraph.package = value
                elif field == b"Description":
                    paragraph.synopsis = value
                else:
                    paragraph.tags = continuing = [value]
        if paragraph is not None:
            self.finish(paragraph, number)
        if number == 0:
            raise self.fail("the text is empty" if self.source != DUMPAVAIL else "printed nothing")
        if self.paragraphs == 0:
            raise self.fail("no paragraphs, only blank lines")

    def finish(self, paragraph: _Paragraph, last: int) -> None:
        self.paragraphs += 1
        start = paragraph.start
        if paragraph.package is None:
            raise self.fail(f"the paragraph of lines {start}-{last} has no Package field", start)
        name = self.text(paragraph.package, start, "Package")
        if name in self.names:
            self.duplicates += 1
            return
        self.names.add(name)
        if paragraph.tags is not None:
            joined = self.text(b" ".join(paragraph.tags), start, "Tag")
            tags = tuple(dict.fromkeys(t for t in (part.strip() for part in joined.split(",")) if t))
            if tags:
                synopsis = self.text(paragraph.synopsis, start, "Description")
                self.tagged.append(Package(name, synopsis, tags, start))

    def text(self, value: bytes, line: int, field: str) -> str:
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as error:
            raise self.fail(
                f"the {field} field of the paragraph starting here is not UTF-8 (byte {value[error.start]:#04x})", line
            ) from None

    def result(self) -> PackagesFile:
        return PackagesFile(
            source=str(self.source),
            compression=self.compression,
            tagged=tuple(self.tagged),
            packages=len(self.names),
            paragraphs=self.paragraphs,
            duplicates=self.duplicates,
            lines=self.number,
            sha256=self.digest.hexdigest(),
        )


def _show(line: bytes) -> str:
    """A short, printable rendering of a bad line."""
    return repr(line[:40] + (b"..." if len(line) > 40 else b""))
