"""Downloads against a local HTTP server on 127.0.0.1 serving archives the test builds."""

import hashlib
import http.server
import io
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import pytest

from asr import download as dl

ROOT = Path(__file__).resolve().parents[1]


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files`` with Range support; ``server.cut_once`` names files whose first
    transfer stops halfway (the connection closes early), ``server.fail_once`` files whose first
    request gets HTTP 503, ``server.ignore_range`` files served whole whatever Range asks."""

    def do_GET(self):  # noqa: N802 - http.server's naming
        name = self.path.rsplit("/", 1)[-1]
        data = self.server.files.get(name)
        self.server.requests.append((name, self.headers.get("Range")))
        if data is None:
            self.send_error(404)
            return
        if name in self.server.fail_once:
            self.server.fail_once.remove(name)
            self.send_error(503)
            return
        start = 0
        if self.headers.get("Range") and name not in self.server.ignore_range:
            start = int(self.headers["Range"].removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        if name in self.server.cut_once:
            self.server.cut_once.remove(name)
            body = body[: len(body) // 2]
        self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files, httpd.cut_once, httpd.requests = {}, set(), []
    httpd.fail_once, httpd.ignore_range = set(), set()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()


def tar_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def url(server, name):
    return f"http://127.0.0.1:{server.server_address[1]}/resources/12/{name}"


def test_a_truncated_transfer_resumes_and_the_checksum_is_verified(server, tmp_path):
    data = bytes(range(256)) * 4000
    server.files["big.bin"] = data
    server.cut_once.add("big.bin")
    path = dl.download(url(server, "big.bin"), tmp_path / "big.bin", hashlib.md5(data).hexdigest(), progress=False)
    assert path.read_bytes() == data
    assert [r for _, r in server.requests] == [None, f"bytes={len(data) // 2}-"]  # the second request resumed
    assert not (tmp_path / "big.bin.part").exists()
    server.requests.clear()
    dl.download(url(server, "big.bin"), tmp_path / "big.bin", hashlib.md5(data).hexdigest(), progress=False)
    assert server.requests == []  # already in place: not fetched again


def test_a_partial_file_from_an_earlier_run_is_resumed(server, tmp_path):
    data = b"x" * 10000 + b"y" * 10000
    server.files["f.bin"] = data
    (tmp_path / "f.bin.part").write_bytes(data[:7000])
    dl.download(url(server, "f.bin"), tmp_path / "f.bin", hashlib.md5(data).hexdigest(), progress=False)
    assert (tmp_path / "f.bin").read_bytes() == data
    assert server.requests == [("f.bin", "bytes=7000-")]


def test_a_bad_checksum_is_refused_and_the_file_deleted(server, tmp_path):
    server.files["f.bin"] = b"not what was published"
    with pytest.raises(dl.DownloadError, match="f.bin: MD5 .* does not match"):
        dl.download(url(server, "f.bin"), tmp_path / "f.bin", "0" * 32, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_a_server_error_is_retried(server, tmp_path):
    data = b"z" * 5000
    server.files["f.bin"], server.fail_once = data, {"f.bin"}
    dl.download(url(server, "f.bin"), tmp_path / "f.bin", hashlib.md5(data).hexdigest(), progress=False)
    assert (tmp_path / "f.bin").read_bytes() == data and len(server.requests) == 2


def test_a_server_that_ignores_range_gives_the_whole_file_once(server, tmp_path):
    data = b"a" * 6000 + b"b" * 6000
    server.files["f.bin"], server.ignore_range = data, {"f.bin"}
    (tmp_path / "f.bin.part").write_bytes(data[:4000])
    dl.download(url(server, "f.bin"), tmp_path / "f.bin", hashlib.md5(data).hexdigest(), progress=False)
    assert (tmp_path / "f.bin").read_bytes() == data  # not the first 4000 bytes twice
    assert server.requests == [("f.bin", "bytes=4000-")]


def test_a_stale_file_with_a_wrong_checksum_is_fetched_again(server, tmp_path):
    data = b"the published bytes" * 100
    server.files["f.bin"] = data
    (tmp_path / "f.bin").write_bytes(b"an older, different file")
    dl.download(url(server, "f.bin"), tmp_path / "f.bin", hashlib.md5(data).hexdigest(), progress=False)
    assert (tmp_path / "f.bin").read_bytes() == data and len(server.requests) == 1


def test_a_missing_file_names_the_url(server, tmp_path):
    with pytest.raises(dl.DownloadError, match=r"nothing.bin: HTTP 404"):
        dl.download(url(server, "nothing.bin"), tmp_path / "nothing.bin", progress=False)


def test_an_archive_with_a_parent_directory_member_is_refused(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    archive.write_bytes(tar_bytes({"LibriSpeech/ok.txt": b"fine", "../escaped.txt": b"gotcha"}))
    with pytest.raises(dl.DownloadError, match="unsafe archive member"):
        dl.extract(archive, tmp_path / "out")
    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "out" / "LibriSpeech" / "ok.txt").exists()  # nothing is extracted


def test_the_script_downloads_verifies_extracts_and_skips_what_is_in_place(server, tmp_path, monkeypatch):
    archive = tar_bytes(
        {
            "LibriSpeech/dev-clean/84/121123/84-121123.trans.txt": b"84-121123-0000 GO DO YOU HEAR\n",
            "LibriSpeech/dev-clean/84/121123/84-121123-0000.flac": b"fake audio",
        }
    )
    server.files["dev-clean.tar.gz"] = archive
    server.cut_once.add("dev-clean.tar.gz")
    base = url(server, "")
    # The published MD5 of the real archive cannot match the test's; a run with it is refused.
    refused = subprocess.run(
        [
            sys.executable,
            str(ROOT / "data_scripts" / "download_librispeech.py"),
            str(tmp_path),
            "--subsets",
            "dev-clean",
            "--mirror",
            base,
        ],
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 1 and "does not match the published" in refused.stderr
    monkeypatch.setitem(dl.LIBRISPEECH_MD5, "dev-clean", hashlib.md5(archive).hexdigest())
    out = dl.download_librispeech(["dev-clean"], tmp_path, mirror=base, progress=False)
    assert (out / "dev-clean" / "84" / "121123" / "84-121123.trans.txt").read_text().startswith("84-121123-0000")
    assert not (tmp_path / "dev-clean.tar.gz").exists()  # archives are removed after extraction
    server.requests.clear()
    dl.download_librispeech(["dev-clean"], tmp_path, mirror=base, progress=False)
    assert server.requests == []
    with pytest.raises(ValueError, match="unknown LibriSpeech subset"):
        dl.download_librispeech(["dev-cleen"], tmp_path, mirror=base)


def test_the_lm_script_checks_sizes_unpacks_in_lower_case_and_writes_a_character_lexicon(server, tmp_path, monkeypatch):
    import gzip

    from asr.decoding import BeamSearchDecoder
    from asr.lm import build_arpa
    from asr.text import Vocabulary

    text = tmp_path / "text.txt"
    text.write_text("go do you hear\ndo you hear me\n" * 3)
    arpa_gz = gzip.compress(
        build_arpa(text, tmp_path / "lm.arpa", order=2)
        .read_text()
        .upper()
        .replace("\\DATA\\", "\\data\\")
        .replace("NGRAM", "ngram")
        .replace("-GRAMS", "-grams")
        .replace("\\END\\", "\\end\\")
        .encode()
    )
    files = {
        "3-gram.pruned.3e-7.arpa.gz": arpa_gz,
        "librispeech-vocab.txt": b"GO\nDO\nYOU\nHEAR\nME\n",
        "librispeech-lexicon.txt": b"GO\tG OW1\n",
    }
    server.files.update(files)
    server.cut_once.add("3-gram.pruned.3e-7.arpa.gz")
    base = f"http://127.0.0.1:{server.server_address[1]}/resources/11"
    root = tmp_path / "lm"
    # The published sizes of the real files cannot match the test's; a run with them is refused.
    refused = subprocess.run(
        [
            sys.executable,
            str(ROOT / "data_scripts" / "download_lm.py"),
            str(root),
            "--files",
            "librispeech-vocab.txt",
            "--mirror",
            base,
        ],
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 1 and "not the published 1737588" in refused.stderr
    assert not (root / "librispeech-vocab.txt").exists()
    for name, data in files.items():
        monkeypatch.setitem(dl.LIBRISPEECH_LM_SIZES, name, len(data))
    outputs = dl.download_librispeech_lm(list(files), root, mirror=base, progress=False)
    assert outputs == [root / "3-gram.pruned.3e-7.arpa", root / "lexicon.txt"]
    assert (root / "3-gram.pruned.3e-7.arpa").read_text() == (tmp_path / "lm.arpa").read_text()  # lower case again
    assert (root / "lexicon.txt").read_text().splitlines()[0] == "do\td o |"
    assert (root / "librispeech-lexicon.txt").read_bytes() == files["librispeech-lexicon.txt"]
    assert BeamSearchDecoder(
        Vocabulary(), lm=str(outputs[0]), lexicon=str(outputs[1])
    ).lexicon  # KenLM and flashlight load them
    server.requests.clear()
    dl.download_librispeech_lm(list(files), root, mirror=base, progress=False)
    assert server.requests == []
    with pytest.raises(ValueError, match="unknown LibriSpeech LM file '5-gram.arpa.gz'"):
        dl.download_librispeech_lm(["5-gram.arpa.gz"], root)


def tar_of(infos: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in infos:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buffer.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    if kind == tarfile.DIRTYPE:
        info.mode = 0o755
    return info


UNSAFE_ARCHIVES = {
    # the CVE-2025-4517 pattern in small: a link to the folder, a link through it to its parent
    "symlink chain": [
        (member("a", tarfile.SYMTYPE, "."), b""),
        (member("a/b", tarfile.SYMTYPE, ".."), b""),
        (member("a/b/escaped.txt"), b"gotcha"),
    ],
    "symlink out": [(member("LibriSpeech/ok.txt"), b"fine"), (member("out", tarfile.SYMTYPE, "/tmp"), b"")],
    "harmless symlink": [
        (member("LibriSpeech/ok.txt"), b"fine"),
        (member("LibriSpeech/same.txt", tarfile.SYMTYPE, "ok.txt"), b""),
    ],
    "hardlink": [
        (member("LibriSpeech/ok.txt"), b"fine"),
        (member("LibriSpeech/passwd", tarfile.LNKTYPE, "/etc/passwd"), b""),
    ],
    "absolute member": [(member("LibriSpeech/ok.txt"), b"fine"), (member("/tmp/asr-absolute-member.txt"), b"gotcha")],
    "fifo": [(member("LibriSpeech/ok.txt"), b"fine"), (member("LibriSpeech/pipe", tarfile.FIFOTYPE), b"")],
    "device": [(member("LibriSpeech/ok.txt"), b"fine"), (member("LibriSpeech/null", tarfile.CHRTYPE), b"")],
    "parent component": [(member("LibriSpeech/ok.txt"), b"fine"), (member("LibriSpeech/../../escaped.txt"), b"gotcha")],
}


@pytest.mark.parametrize("kind", sorted(UNSAFE_ARCHIVES))
def test_an_archive_with_anything_but_files_and_folders_inside_the_target_is_refused_and_leaves_nothing(tmp_path, kind):
    archive = tmp_path / "evil.tar.gz"
    archive.write_bytes(tar_of(UNSAFE_ARCHIVES[kind]))
    out = tmp_path / "out"
    with pytest.raises(dl.DownloadError, match=r"evil\.tar\.gz: unsafe archive member refused"):
        dl.extract(archive, out)
    assert not out.exists() and not out.is_symlink()  # nothing written, not even the folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.tar.gz"]
    assert not Path("/tmp/asr-absolute-member.txt").exists()  # refused, not re-rooted either


def test_an_archive_cannot_write_through_a_link_already_in_the_target(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "LibriSpeech").symlink_to(outside)
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(tar_of([(member("LibriSpeech/ok.txt"), b"fine")]))
    with pytest.raises(dl.DownloadError, match="outside the target folder"):
        dl.extract(archive, out)
    assert list(outside.iterdir()) == []


def test_files_and_folders_are_extracted_with_their_contents(tmp_path):
    archive = tmp_path / "good.tar.gz"
    archive.write_bytes(
        tar_of(
            [
                (member("LibriSpeech", tarfile.DIRTYPE), b""),
                (member("LibriSpeech/dev-clean/84/1.txt"), b"one"),
                (member("LibriSpeech/README.TXT"), b"readme"),
            ]
        )
    )
    dl.extract(archive, tmp_path / "out")
    assert (tmp_path / "out/LibriSpeech/dev-clean/84/1.txt").read_bytes() == b"one"
    assert (tmp_path / "out/LibriSpeech/README.TXT").read_bytes() == b"readme"
    assert (tmp_path / "out/.good.tar.gz.extracted").exists()
