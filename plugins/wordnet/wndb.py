"""Read the WordNet 3.0 noun database files (``wndb(5WN)`` format) without NLTK.

The files come from the Debian package ``wordnet-base`` (``/usr/share/wordnet``:
``data.noun``, ``index.noun``), or any WordNet 3.0 ``dict/`` directory. Synsets keep
every noun-to-noun pointer, so the hierarchy (``@`` hypernym, ``@i`` instance hypernym)
and the other relations (meronyms ``%m %s %p``, holonyms ``#m #s #p``, ...) are read
from the same parse.

Problems with a file raise :class:`WordNetFileError` naming the file and line.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

__all__ = [
    "HYPERNYMS",
    "POINTER_NAMES",
    "Synset",
    "WordNetFileError",
    "find_wordnet_dir",
    "name_synsets",
    "read_data_noun",
    "read_noun_database",
    "read_sense_numbers",
]

#: Pointer symbols of the noun hierarchy: hypernym and instance hypernym.
HYPERNYMS = ("@", "@i")

#: Noun pointer symbols (``wninput(5WN)``) → relation names.
POINTER_NAMES = {
    "@": "hypernym",
    "@i": "instance_hypernym",
    "~": "hyponym",
    "~i": "instance_hyponym",
    "#m": "member_holonym",
    "#s": "substance_holonym",
    "#p": "part_holonym",
    "%m": "member_meronym",
    "%s": "substance_meronym",
    "%p": "part_meronym",
    "=": "attribute",
    "+": "derivationally_related",
    ";c": "domain_topic",
    "-c": "member_of_domain_topic",
    ";r": "domain_region",
    "-r": "member_of_domain_region",
    ";u": "domain_usage",
    "-u": "member_of_domain_usage",
    "!": "antonym",
}

_INSTALL_HINT = "install the Debian package wordnet-base (apt-get install wordnet-base) or pass the directory"


class WordNetFileError(ValueError):
    """A WordNet database file is missing or malformed; names the file (and line)."""


@dataclasses.dataclass
class Synset:
    """One noun synset.

    :ivar offset: the synset's byte offset in ``data.noun`` (its identifier).
    :ivar lemmas: the words, underscores for spaces, in file order.
    :ivar pointers: ``(symbol, target offset)`` of every pointer to another noun synset
        (lexical pointers between words are kept too; their source/target word numbers
        are dropped).
    :ivar name: NLTK's ``lemma.n.NN`` form, once :func:`name_synsets` ran.
    """

    offset: str
    lex_filenum: int
    lemmas: list[str]
    pointers: list[tuple[str, str]]
    gloss: str
    name: str = ""

    @property
    def parents(self) -> list[str]:
        """Hypernym and instance-hypernym offsets, in file order."""
        return [target for symbol, target in self.pointers if symbol in HYPERNYMS]

    @property
    def instance(self) -> bool:
        """Whether the synset has an instance-hypernym pointer (a named instance)."""
        return any(symbol == "@i" for symbol, _ in self.pointers)


def find_wordnet_dir(wordnet_dir: str | os.PathLike[str] | None = None) -> Path:
    """``wordnet_dir``, else ``$WNSEARCHDIR``, else ``/usr/share/wordnet``; it must hold ``data.noun``."""
    candidates = [wordnet_dir] if wordnet_dir is not None else [os.environ.get("WNSEARCHDIR"), "/usr/share/wordnet"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "data.noun").is_file():
            return Path(candidate)
    where = ", ".join(str(c) for c in candidates if c)
    raise WordNetFileError(f"WordNet 3.0 data.noun not found in {where}: {_INSTALL_HINT}")


def read_data_noun(path: str | os.PathLike[str]) -> dict[str, Synset]:
    """Parse ``data.noun``: ``offset lex_filenum ss_type w_cnt (word lex_id)* p_cnt
    (pointer_symbol offset pos source/target)* | gloss`` (``w_cnt`` is hex)."""
    synsets: dict[str, Synset] = {}
    try:
        lines = open(path, encoding="utf-8")
    except OSError as exc:
        raise WordNetFileError(f"{path}: cannot read: {exc.strerror or exc}; {_INSTALL_HINT}") from None
    with lines:
        for number, line in enumerate(lines, 1):
            if line.startswith("  "):  # licence header
                continue
            body, bar, gloss = line.partition(" | ")
            fields = body.split()
            try:
                offset, lex_filenum, ss_type = fields[0], int(fields[1]), fields[2]
                w_cnt = int(fields[3], 16)
                lemmas = fields[4 : 4 + 2 * w_cnt : 2]
                at = 4 + 2 * w_cnt
                p_cnt = int(fields[at])
                pointers = [fields[at + 1 + 4 * k : at + 5 + 4 * k] for k in range(p_cnt)]
            except (IndexError, ValueError) as error:
                raise WordNetFileError(f"{path}:{number}: not a WordNet data line ({error})") from None
            if not bar or ss_type != "n" or len(lemmas) != w_cnt or any(len(p) != 4 for p in pointers):
                raise WordNetFileError(f"{path}:{number}: not a WordNet noun data line")
            nouns = [(symbol, target) for symbol, target, pos, _ in pointers if pos == "n"]
            synsets[offset] = Synset(offset, lex_filenum, lemmas, nouns, gloss.strip())
    if not synsets:
        raise WordNetFileError(f"{path}: no synsets (an empty or truncated data.noun)")
    return synsets


def read_sense_numbers(path: str | os.PathLike[str]) -> dict[str, list[str]]:
    """``index.noun``: lemma → synset offsets in sense-number order."""
    senses: dict[str, list[str]] = {}
    try:
        lines = open(path, encoding="utf-8")
    except OSError as exc:
        raise WordNetFileError(f"{path}: cannot read: {exc.strerror or exc}; {_INSTALL_HINT}") from None
    with lines:
        for number, line in enumerate(lines, 1):
            if line.startswith("  "):
                continue
            fields = line.split()
            try:
                lemma, synset_cnt, p_cnt = fields[0], int(fields[2]), int(fields[3])
                offsets = fields[6 + p_cnt :]
            except (IndexError, ValueError) as error:
                raise WordNetFileError(f"{path}:{number}: not a WordNet index line ({error})") from None
            if len(offsets) != synset_cnt:
                raise WordNetFileError(f"{path}:{number}: {synset_cnt} senses announced, {len(offsets)} listed")
            senses[lemma] = offsets
    return senses


def name_synsets(synsets: dict[str, Synset], senses: dict[str, list[str]]) -> None:
    """Set ``Synset.name`` to NLTK's form ``lemma.n.NN``: the lower-cased first lemma
    and the synset's sense number for that lemma in ``index.noun``."""
    for synset in synsets.values():
        lemma = synset.lemmas[0].lower()
        try:
            synset.name = f"{lemma}.n.{senses[lemma].index(synset.offset) + 1:02d}"
        except (KeyError, ValueError):
            raise WordNetFileError(
                f"index.noun does not list synset {synset.offset} under '{lemma}': data.noun and index.noun "
                "come from different WordNet versions"
            ) from None


def read_noun_database(wordnet_dir: str | os.PathLike[str] | None = None) -> dict[str, Synset]:
    """Every noun synset of ``data.noun`` with its NLTK name (see :func:`find_wordnet_dir`)."""
    directory = find_wordnet_dir(wordnet_dir)
    synsets = read_data_noun(directory / "data.noun")
    name_synsets(synsets, read_sense_numbers(directory / "index.noun"))
    return synsets
