"""lstmlib.experiments.data: locating, verifying and downloading corpora (offline: the
network is faked), PTB and Tiny Shakespeare as documented, batching."""
import hashlib
import io
import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch

from lstmlib.experiments import data
from lstmlib.experiments.data import (CACHE_ENV, DATA_ENV, EOS, PTB_FILES, SOURCES,
                          TINY_SHAKESPEARE_FILE, ChecksumError,
                          DownloadError, Vocabulary, batchify, bptt_windows,
                          load_ptb, load_tiny_shakespeare, locate_data_file)

REPO = Path(__file__).resolve().parents[1]


def _shared_data() -> Path | None:
    """``$LSTMLIB_DATA`` if set, else ``../shared/data`` beside the repo."""
    for candidate in (os.environ.get(DATA_ENV),
                      REPO.parent / "shared" / "data"):
        if candidate and (Path(candidate) / PTB_FILES[0]).is_file():
            return Path(candidate)
    return None


SHARED = _shared_data()
needs_data = pytest.mark.skipif(
    SHARED is None, reason=f"no data: set {DATA_ENV} to a folder holding "
    f"{', '.join(PTB_FILES)} and {TINY_SHAKESPEARE_FILE}")


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch, tmp_path):
    """No test reads the user's cache or data folder, or the network."""
    monkeypatch.delenv(DATA_ENV, raising=False)
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))

    def no_network(*args, **kwargs):
        raise AssertionError("a test tried to reach the network")
    monkeypatch.setattr(urllib.request, "urlopen", no_network)


@pytest.fixture(scope="module")
def ptb():
    return load_ptb(SHARED, download=False)


@pytest.fixture(scope="module")
def shakespeare():
    return load_tiny_shakespeare(SHARED, download=False)


@needs_data
def test_ptb_token_counts_and_vocabulary(ptb):
    assert [len(s) for s in (ptb.train, ptb.valid, ptb.test)] == \
        [929_589, 73_760, 82_430]
    assert all(s.dtype == torch.long and s.dim() == 1
               for s in (ptb.train, ptb.valid, ptb.test))
    assert len(ptb.vocab) == 10_000
    assert EOS in ptb.vocab.stoi and "<unk>" in ptb.vocab.stoi
    # one <eos> per line: 42,068 / 3,370 / 3,761 lines
    eos = ptb.vocab.stoi[EOS]
    assert [(s == eos).sum().item() for s in
            (ptb.train, ptb.valid, ptb.test)] == [42_068, 3_370, 3_761]
    assert int(ptb.train.max()) == 9_999 and int(ptb.train.min()) == 0


@needs_data
def test_ptb_vocabulary_order_is_by_count_then_alphabetical(ptb):
    counts = torch.bincount(ptb.train, minlength=len(ptb.vocab)).tolist()
    keys = [(-c, s) for c, s in zip(counts, ptb.vocab.itos)]
    assert keys == sorted(keys)
    assert ptb.vocab.itos[0] == "the"


@needs_data
def test_ptb_round_trip_and_first_line(ptb):
    path = SHARED / PTB_FILES[1]
    first_line = path.read_text().splitlines()[0].split()
    n = len(first_line) + 1
    assert ptb.vocab.decode(ptb.valid[:n]) == first_line + [EOS]
    assert torch.equal(ptb.vocab.encode(first_line + [EOS]), ptb.valid[:n])
    with pytest.raises(ValueError, match="'zzzz-not-a-word'"):
        ptb.vocab.encode(["the", "zzzz-not-a-word"])


@needs_data
def test_tiny_shakespeare_characters_and_split(shakespeare):
    sizes = [len(s) for s in (shakespeare.train, shakespeare.valid,
                              shakespeare.test)]
    assert sum(sizes) == 1_115_394
    assert sizes == [1_003_854, 55_769, 55_771]
    assert len(shakespeare.vocab) == 65
    assert shakespeare.vocab.itos == sorted(shakespeare.vocab.itos)
    text = (SHARED / TINY_SHAKESPEARE_FILE).read_text()
    joined = "".join(shakespeare.vocab.decode(torch.cat(
        [shakespeare.train, shakespeare.valid, shakespeare.test])))
    assert joined == text


def test_missing_data_error_names_variable_files_and_url(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        load_ptb(tmp_path, download=False)
    message = str(error.value)
    assert DATA_ENV in message and "--data DIR" in message
    for name in PTB_FILES:
        assert name in message
    assert SOURCES[PTB_FILES[0]][0] in message
    with pytest.raises(FileNotFoundError, match=DATA_ENV) as error:
        load_tiny_shakespeare(tmp_path, download=False)
    assert SOURCES[TINY_SHAKESPEARE_FILE][0] in str(error.value)


def test_empty_data_variable_does_not_fall_back(monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match=DATA_ENV):
        load_ptb()  # download=True, but LSTMLIB_DATA is the only source


def test_damaged_local_file_is_refused(tmp_path):
    path = tmp_path / PTB_FILES[0]
    path.parent.mkdir()
    path.write_text(" a b \n")
    with pytest.raises(ChecksumError, match="ptb.train.txt"):
        locate_data_file(PTB_FILES[0], tmp_path)


@pytest.fixture
def fake_source(monkeypatch):
    """A tiny file registered in the checksum table, and a fake network
    serving ``served[0]`` (bytes, or an exception after half of them)."""
    content = b"a tiny corpus\n"
    url = "https://example.invalid/fake/tiny.txt"
    monkeypatch.setitem(SOURCES, "fake/tiny.txt",
                        (url, hashlib.sha256(content).hexdigest()))
    served = [content]

    class Response(io.BytesIO):
        def __init__(self, payload, fail):
            super().__init__(payload)
            self.fail = fail

        def read(self, size=-1):
            if self.fail and self.tell() > 0:
                raise urllib.error.URLError("connection reset")
            return super().read(max(1, min(size, 4)))

    def urlopen(requested, timeout=None):
        assert requested == url
        if isinstance(served[0], Exception):
            return Response(content, fail=True)
        return Response(served[0], fail=False)
    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return content, url, served


def test_download_with_right_checksum_lands_in_cache(fake_source, tmp_path,
                                                     monkeypatch):
    content, _, _ = fake_source
    path = locate_data_file("fake/tiny.txt")
    assert path == tmp_path / "cache" / "fake" / "tiny.txt"
    assert path.read_bytes() == content
    assert os.listdir(path.parent) == ["tiny.txt"]
    # a second call finds the cached copy without the network
    monkeypatch.setattr(urllib.request, "urlopen", None)
    assert locate_data_file("fake/tiny.txt") == path


def test_download_with_wrong_checksum_leaves_nothing(fake_source,
                                                     tmp_path):
    _, url, served = fake_source
    served[0] = b"a tampered corpus\n"
    with pytest.raises(DownloadError) as error:
        locate_data_file("fake/tiny.txt")
    assert url in str(error.value)
    assert SOURCES["fake/tiny.txt"][1] in str(error.value)
    assert os.listdir(tmp_path / "cache" / "fake") == []


def test_network_error_mid_download_leaves_nothing(fake_source, tmp_path):
    _, url, served = fake_source
    served[0] = urllib.error.URLError("connection reset")
    with pytest.raises(DownloadError, match="connection reset") as error:
        locate_data_file("fake/tiny.txt")
    assert url in str(error.value)
    assert isinstance(error.value.__cause__, urllib.error.URLError)
    assert os.listdir(tmp_path / "cache" / "fake") == []


def test_the_offline_error_names_both_ways_to_local_files(fake_source):
    """Without a network, the error says how to point the commands
    (``--data``) and the library (``LSTMLIB_DATA``) at local copies."""
    _, _, served = fake_source
    served[0] = urllib.error.URLError("Temporary failure in name resolution")
    with pytest.raises(DownloadError) as error:
        locate_data_file("fake/tiny.txt")
    message = str(error.value)
    assert "--data DIR" in message and DATA_ENV in message
    assert PTB_FILES[0] in message and "python -m lstmlib.commands.ptb" \
        in message


def test_download_false_does_not_touch_the_network(fake_source):
    with pytest.raises(FileNotFoundError, match="example.invalid"):
        locate_data_file("fake/tiny.txt", download=False)


def test_vocabulary_by_frequency_breaks_ties_alphabetically():
    vocab = Vocabulary.by_frequency("b a c b a d".split())
    assert vocab.itos == ["a", "b", "c", "d"]
    assert vocab.decode(vocab.encode(["d", "a"])) == ["d", "a"]
    with pytest.raises(ValueError, match="distinct"):
        Vocabulary(["x", "x"])


def test_batchify_cuts_contiguous_columns_and_drops_the_rest():
    stream = torch.arange(23)
    batched = batchify(stream, 4)
    assert batched.shape == (5, 4)
    for b in range(4):
        assert torch.equal(batched[:, b], torch.arange(5 * b, 5 * b + 5))
    with pytest.raises(ValueError, match="batch_size"):
        batchify(stream, 0)
    with pytest.raises(ValueError, match="1-D"):
        batchify(stream.view(1, -1), 2)


@pytest.mark.parametrize("length", [1, 3, 4, 10])
def test_bptt_windows_shift_targets_by_one_step(length):
    batched = batchify(torch.arange(30), 3)  # (10, 3)
    windows = list(bptt_windows(batched, length))
    lengths = [x.shape[0] for x, _ in windows]
    assert sum(lengths) == 9  # every token but the last is an input
    assert all(n == length for n in lengths[:-1])
    assert 1 <= lengths[-1] <= length
    for x, y in windows:
        assert x.shape == y.shape and x.shape[1] == 3
        assert torch.equal(y, x + 1)  # column b counts up by one
    inputs = torch.cat([x for x, _ in windows])
    assert torch.equal(inputs, batched[:-1])


def test_module_exports_what_it_documents():
    for name in data.__all__:
        assert hasattr(data, name)
