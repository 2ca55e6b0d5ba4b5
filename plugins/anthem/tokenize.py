"""Hashed character-trigram (or word) tokenisation.

Each word is wrapped in boundary markers (``#fire#``) and cut into character trigrams
(``#fi``, ``fir``, ``ire``, ``re#``), as in DSSM and ANTHEM. Tokens are hashed into a
fixed vocabulary with a keyed BLAKE2 hash (stable across processes and machines, unlike
Python's salted ``hash``), so unseen words still embed and the vocabulary never grows.
Id 0 is padding.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Sequence
from functools import lru_cache

import torch
from torch import Tensor

__all__ = ["Tokenizer"]

_WORD = re.compile(r"[^\W_]+", re.UNICODE)


@lru_cache(maxsize=1 << 18)
def _hash(token: str, buckets: int) -> int:
    digest = hashlib.blake2b(token.encode("utf-8"), digest_size=8, key=b"boxlib").digest()
    return 1 + int.from_bytes(digest, "little") % (buckets - 1)


@dataclasses.dataclass(frozen=True)
class Tokenizer:
    """Text → token ids.

    :param vocab_size: number of hash buckets, padding included.
    :param mode: ``"trigram"`` (character trigrams of each word) or ``"word"``.
    """

    vocab_size: int = 1 << 16
    mode: str = "trigram"

    def __post_init__(self) -> None:
        if self.mode not in ("trigram", "word"):
            raise ValueError(f"tokenizer mode must be 'trigram' or 'word', got {self.mode!r}")
        if self.vocab_size < 2:
            raise ValueError(f"vocab_size must be at least 2, got {self.vocab_size}")

    def tokens(self, text: str) -> list[str]:
        """The string tokens of ``text`` (lower-cased words, or their trigrams)."""
        words = _WORD.findall(text.lower())
        if self.mode == "word":
            return words
        out: list[str] = []
        for word in words:
            marked = f"#{word}#"
            out.extend(marked[i : i + 3] for i in range(len(marked) - 2))
        return out

    def ids(self, text: str) -> list[int]:
        return [_hash(t, self.vocab_size) for t in self.tokens(text)]

    def batch(self, texts: Sequence[str], max_tokens: int) -> tuple[Tensor, Tensor]:
        """``(ids [B, T], mask [B, T])``, truncated to ``max_tokens``; an empty text gets
        one padding token with mask True so every row has at least one position."""
        rows = [self.ids(t)[:max_tokens] for t in texts]
        width = max(1, max((len(r) for r in rows), default=1))
        ids = torch.zeros(len(rows), width, dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.bool)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[i, : max(1, len(row))] = True
        return ids, mask
