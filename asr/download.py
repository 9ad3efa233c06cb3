"""Downloading corpora: resumable HTTP transfers, MD5 checks, safe tar extraction.

Used by ``data_scripts/download_librispeech.py`` (and the LM download). Only the standard
library: ``urllib`` with HTTP ``Range`` requests to resume, ``hashlib`` for MD5 and ``tarfile``'s
``data`` filter, which refuses members that would land outside the target folder.
"""

from __future__ import annotations

import hashlib
import logging
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

log = logging.getLogger(__name__)

LIBRISPEECH_MIRRORS = {
    "openslr": "https://www.openslr.org/resources/12",
    "us": "https://us.openslr.org/resources/12",
    "eu": "https://openslr.elda.org/resources/12",
    "cn": "https://openslr.magicdatatech.com/resources/12",
}
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


def download(url: str, dest: str | Path, md5: str | None = None, retries: int = 5, progress: bool = True, timeout: float = 60.0) -> Path:
    """Fetch ``url`` to ``dest`` and return ``dest``.

    Bytes go to ``dest.part`` first; an interrupted transfer resumes from where it stopped (an HTTP
    Range request) on the next try or the next run. With ``md5`` the finished file is checked and a
    mismatch is deleted and refused. A ``dest`` already in place (with the right MD5) is kept.
    """
    dest = Path(dest)
    if dest.exists() and (md5 is None or md5sum(dest) == md5):
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
                raise DownloadError(f"{url}: failed after {retries} tries ({error}); rerun to resume from {part}") from None
            log.warning("%s: %s; resuming (try %d of %d)", url, error, attempt + 1, retries)
            time.sleep(min(2**attempt, 30) * 0.1)
    if md5 is not None:
        actual = md5sum(part)
        if actual != md5:
            part.unlink()
            raise DownloadError(f"{url}: MD5 {actual} does not match the published {md5}; the download was deleted")
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
        with open(part, "ab" if have else "wb") as out, tqdm(
            total=total, initial=have, unit="B", unit_scale=True, desc=part.name.removesuffix(".part"), disable=not progress
        ) as bar:
            while block := response.read(_BLOCK):
                out.write(block)
                bar.update(len(block))
    size = part.stat().st_size
    if total is not None and size < total:
        raise ConnectionError(f"transfer ended at {size} of {total} bytes")


def extract(archive: str | Path, dest: str | Path) -> None:
    """Extract a tar archive into ``dest`` with tarfile's ``data`` filter: members with absolute
    paths, ``..`` components or links out of ``dest`` are refused (nothing is extracted then).
    A marker file records a finished extraction, so a rerun skips it."""
    archive, dest = Path(archive), Path(dest)
    marker = dest / f".{archive.name}.extracted"
    if marker.exists():
        log.info("%s: already extracted into %s", archive, dest)
        return
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for member in members:  # check everything before writing anything
                tarfile.data_filter(member, str(dest))
            for member in tqdm(members, desc=f"extract {archive.name}", unit="file", disable=len(members) < 100):
                tar.extract(member, dest, filter="data")
    except tarfile.FilterError as error:
        raise DownloadError(f"{archive}: unsafe archive member refused ({error})") from None
    except (tarfile.TarError, EOFError) as error:
        raise DownloadError(f"{archive}: not a readable tar archive ({error})") from None
    marker.touch()


def download_librispeech(subsets: list[str], root: str | Path, mirror: str = "openslr", keep_archives: bool = False, progress: bool = True) -> Path:
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
        archive = download(f"{base}/{subset}.tar.gz", root / f"{subset}.tar.gz", LIBRISPEECH_MD5[subset], progress=progress)
        extract(archive, root)
        if not keep_archives:
            archive.unlink()
    return root / "LibriSpeech"


__all__ = ["DownloadError", "LIBRISPEECH_MD5", "LIBRISPEECH_MIRRORS", "download", "download_librispeech", "extract", "md5sum"]
