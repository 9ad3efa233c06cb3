"""Downloading corpora: resumable HTTP transfers, MD5 checks, safe tar extraction.

Used by ``data_scripts/download_librispeech.py`` and ``data_scripts/download_lm.py``. Only the standard
library: ``urllib`` with HTTP ``Range`` requests to resume, ``hashlib`` for MD5, and ``tarfile`` read
member by member: LibriSpeech archives hold only regular files and folders, so those are all that
is accepted, each one's final path resolved inside the target here (not left to the ``data`` filter,
whose link handling differs between Python releases: CVE-2025-4517).
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import shutil
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from .files import atomic_write

log = logging.getLogger(__name__)

OPENSLR_MIRRORS = {
    "openslr": "https://www.openslr.org/resources",
    "us": "https://us.openslr.org/resources",
    "eu": "https://openslr.elda.org/resources",
    "cn": "https://openslr.magicdatatech.com/resources",
}
LIBRISPEECH_MIRRORS = {name: f"{url}/12" for name, url in OPENSLR_MIRRORS.items()}  # the corpus
LIBRISPEECH_LM_MIRRORS = {name: f"{url}/11" for name, url in OPENSLR_MIRRORS.items()}  # its LMs
# MD5 sums as published by OpenSLR for resource 12.
LIBRISPEECH_MD5 = {
    "dev-clean": "42e2234ba48799c1f50f24a7926300a1",
    "dev-other": "c8d0bcc9cca99d4f8b62fcc847357931",
    "test-clean": "32fa31d27d2e1cad72775fee3f4849a9",
    "test-other": "fb5a50374b501bb3bac4815ee91d3135",
    "train-clean-100": "2a93770f6d5c6c964bc36631d331a522",
    "train-clean-360": "c0e676e450a7ff2f54aeade5171606fa",
    "train-other-500": "d1a0fd59409feb2c614ce4d30c387708",
}

# LibriSpeech's n-gram LMs, vocabulary and lexicon: OpenSLR resource 11, on the same mirrors.
# OpenSLR publishes no checksums for it; these are the file sizes in bytes that Kaldi's
# egs/librispeech/s5/local/download_lm.sh checks.
LIBRISPEECH_LM_SIZES = {
    "3-gram.arpa.gz": 759636181,
    "3-gram.pruned.1e-7.arpa.gz": 34094057,
    "3-gram.pruned.3e-7.arpa.gz": 13654242,
    "4-gram.arpa.gz": 1355172078,
    "4-gram.pruned.1e-7.arpa.gz": 32174144,
    "4-gram.pruned.3e-7.arpa.gz": 11970993,
    "librispeech-vocab.txt": 1737588,
    "librispeech-lexicon.txt": 5627653,
}

_BLOCK = 1 << 20


class DownloadError(RuntimeError):
    """A transfer, checksum or archive problem; the message names the URL or file."""


def md5sum(path: str | Path) -> str:
    """Hex MD5 of a file, read in blocks."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def download(
    url: str,
    dest: str | Path,
    md5: str | None = None,
    retries: int = 5,
    progress: bool = True,
    timeout: float = 60.0,
    size: int | None = None,
) -> Path:
    """Fetch ``url`` to ``dest`` and return ``dest``.

    Bytes go to ``dest.part`` first; an interrupted transfer resumes from where it stopped (an HTTP
    Range request) on the next try or the next run. With ``md5`` (or ``size``, in bytes, where no
    checksum is published) the finished file is checked and a mismatch is deleted and refused. A
    ``dest`` already in place (with the right MD5 and size) is kept.
    """
    dest = Path(dest)
    if dest.exists() and (md5 is None or md5sum(dest) == md5) and (size is None or dest.stat().st_size == size):
        log.info("%s: already downloaded", dest)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(1, retries + 1):
        try:
            _fetch(url, part, progress, timeout)
            break
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as error:
            if isinstance(error, urllib.error.HTTPError) and error.code not in (408, 429, 500, 502, 503, 504):
                raise DownloadError(f"{url}: HTTP {error.code} {error.reason}") from None
            if attempt == retries:
                raise DownloadError(
                    f"{url}: failed after {retries} tries ({error}); rerun to resume from {part}"
                ) from None
            log.warning("%s: %s; resuming (try %d of %d)", url, error, attempt + 1, retries)
            time.sleep(min(2**attempt, 30) * 0.1)
    if md5 is not None:
        actual = md5sum(part)
        if actual != md5:
            part.unlink()
            raise DownloadError(f"{url}: MD5 {actual} does not match the published {md5}; the download was deleted")
    if size is not None and part.stat().st_size != size:
        actual_size = part.stat().st_size
        part.unlink()
        raise DownloadError(f"{url}: {actual_size} bytes, not the published {size}; the download was deleted")
    part.replace(dest)
    return dest


def _fetch(url: str, part: Path, progress: bool, timeout: float) -> None:
    """Append the rest of ``url`` to ``part``; raises ConnectionError on a short transfer."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416:  # the range starts at the end: nothing left to fetch
            return
        raise
    with response:
        if have and response.status != 206:  # the server ignored the range: start again
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        with (
            open(part, "ab" if have else "wb") as out,
            tqdm(
                total=total,
                initial=have,
                unit="B",
                unit_scale=True,
                desc=part.name.removesuffix(".part"),
                disable=not progress,
            ) as bar,
        ):
            while block := response.read(_BLOCK):
                out.write(block)
                bar.update(len(block))
    size = part.stat().st_size
    if total is not None and size < total:
        raise ConnectionError(f"transfer ended at {size} of {total} bytes")


def _member_path(member: tarfile.TarInfo, root: Path) -> Path:
    """Where ``member`` lands under the resolved folder ``root``; a :class:`DownloadError` for
    anything but a regular file or a folder, an absolute name, or a path that leaves ``root``."""
    if not (member.isreg() or member.isdir()):
        kind = "link" if member.issym() or member.islnk() else "device, FIFO or other special file"
        raise DownloadError(f"{member.name!r} is a {kind}; only regular files and folders are accepted")
    name = member.name
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise DownloadError(f"{name!r} is an absolute path")
    if ".." in Path(name).parts:
        raise DownloadError(f"{name!r} has a '..' component")
    target = (root / name).resolve()
    if target != root and root not in target.parents:
        raise DownloadError(f"{name!r} would land outside the target folder, at {target}")
    return target


def extract(archive: str | Path, dest: str | Path) -> None:
    """Extract a tar archive into ``dest``, accepting only regular files and folders whose paths
    stay inside it: links (symbolic or hard), devices, FIFOs, absolute names and ``..`` are refused
    with a :class:`DownloadError`, and every member is checked before anything is written, so a
    refused archive leaves nothing behind. A marker file records a finished extraction, so a rerun
    skips it."""
    archive, dest = Path(archive), Path(dest)
    marker = dest / f".{archive.name}.extracted"
    if marker.exists():
        log.info("%s: already extracted into %s", archive, dest)
        return
    root = dest.resolve()
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            try:
                targets = [_member_path(member, root) for member in members]  # everything before writing anything
            except DownloadError as error:
                raise DownloadError(f"{archive}: unsafe archive member refused: {error}") from None
            dest.mkdir(parents=True, exist_ok=True)
            for member, target in tqdm(
                list(zip(members, targets)), desc=f"extract {archive.name}", unit="file", disable=len(members) < 100
            ):
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                with open(target, "wb") as out:
                    shutil.copyfileobj(source, out, _BLOCK)
    except (tarfile.TarError, EOFError) as error:
        raise DownloadError(f"{archive}: not a readable tar archive ({error})") from None
    marker.touch()


def download_librispeech(
    subsets: list[str], root: str | Path, mirror: str = "openslr", keep_archives: bool = False, progress: bool = True
) -> Path:
    """Download and extract LibriSpeech ``subsets`` under ``root`` (giving ``root/LibriSpeech/<subset>``).

    ``mirror`` is a name from :data:`LIBRISPEECH_MIRRORS` or a base URL.
    """
    root = Path(root)
    base = LIBRISPEECH_MIRRORS.get(mirror, mirror).rstrip("/")
    for subset in subsets:
        if subset not in LIBRISPEECH_MD5:
            raise ValueError(f"unknown LibriSpeech subset {subset!r}; known: {', '.join(LIBRISPEECH_MD5)}")
    for subset in subsets:
        if (root / "LibriSpeech" / subset).is_dir() and (root / f".{subset}.tar.gz.extracted").exists():
            log.info("%s: already in place", root / "LibriSpeech" / subset)
            continue
        archive = download(
            f"{base}/{subset}.tar.gz", root / f"{subset}.tar.gz", LIBRISPEECH_MD5[subset], progress=progress
        )
        extract(archive, root)
        if not keep_archives:
            archive.unlink()
    return root / "LibriSpeech"


def download_librispeech_lm(
    files: list[str], root: str | Path, mirror: str = "openslr", progress: bool = True
) -> list[Path]:
    """Download LibriSpeech LM resource files (names from :data:`LIBRISPEECH_LM_SIZES`) into ``root``
    from ``mirror``, a name from :data:`LIBRISPEECH_LM_MIRRORS` or a base URL.

    Each ``*.arpa.gz`` is also unpacked to ``*.arpa`` in lower case (the corpus's LMs are upper
    case; transcripts here are normalised to lower case), and ``librispeech-vocab.txt`` gives
    ``lexicon.txt``, a character lexicon for lexicon-constrained beam search (the corpus's own
    ``librispeech-lexicon.txt`` spells words in phonemes). Files in place are skipped.
    Returns the paths of what a decoder uses (ARPA files and ``lexicon.txt``).
    """
    from .decoding import write_lexicon

    root = Path(root)
    unknown = [name for name in files if name not in LIBRISPEECH_LM_SIZES]
    if unknown:
        raise ValueError(f"unknown LibriSpeech LM file {unknown[0]!r}; known: {', '.join(LIBRISPEECH_LM_SIZES)}")
    base = LIBRISPEECH_LM_MIRRORS.get(mirror, mirror).rstrip("/")
    outputs = []
    for name in files:
        path = download(f"{base}/{name}", root / name, size=LIBRISPEECH_LM_SIZES[name], progress=progress)
        if name.endswith(".arpa.gz"):
            outputs.append(_lowercase_gunzip(path, root / name.removesuffix(".gz"), progress))
        elif name == "librispeech-vocab.txt":
            lexicon = root / "lexicon.txt"
            if not lexicon.exists():
                words = [line.strip().lower() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
                write_lexicon(words, lexicon)
            outputs.append(lexicon)
    return outputs


def _lowercase_gunzip(archive: Path, dest: Path, progress: bool) -> Path:
    """Unpack a gzipped ARPA file in lower case, atomically."""
    if dest.exists():
        return dest
    try:
        with gzip.open(archive, "rt", encoding="utf-8") as src, atomic_write(dest, text=True) as out:
            for line in tqdm(src, desc=f"unpack {archive.name}", unit=" lines", unit_scale=True, disable=not progress):
                out.write(line.lower())
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise DownloadError(f"{archive}: not a readable gzip text file ({error})") from None
    return dest


__all__ = [
    "DownloadError",
    "LIBRISPEECH_LM_MIRRORS",
    "LIBRISPEECH_LM_SIZES",
    "LIBRISPEECH_MD5",
    "LIBRISPEECH_MIRRORS",
    "download",
    "download_librispeech",
    "download_librispeech_lm",
    "extract",
    "md5sum",
]
