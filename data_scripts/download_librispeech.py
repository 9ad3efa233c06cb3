#!/usr/bin/env python3
"""Download LibriSpeech subsets from an OpenSLR mirror, check their MD5 sums and extract them.

    download_librispeech.py ROOT [--subsets dev-clean test-clean ...] [--mirror openslr|us|eu|cn|URL]

Gives ROOT/LibriSpeech/<subset>/. Interrupted downloads resume (rerun the command); archives
whose MD5 does not match the published one are deleted and refused; archive members that would
land outside ROOT are refused; subsets already in place are skipped.
"""

import argparse
import logging
import sys

from asr.download import LIBRISPEECH_MD5, LIBRISPEECH_MIRRORS, DownloadError, download_librispeech


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", help="folder to download into")
    parser.add_argument(
        "--subsets",
        nargs="+",
        default=["dev-clean", "dev-other", "test-clean", "test-other"],
        choices=list(LIBRISPEECH_MD5),
        metavar="SUBSET",
        help=f"any of {', '.join(LIBRISPEECH_MD5)} (default: the dev and test sets)",
    )
    parser.add_argument(
        "--mirror", default="openslr", help=f"{', '.join(LIBRISPEECH_MIRRORS)} or a base URL (default: openslr)"
    )
    parser.add_argument("--keep-archives", action="store_true", help="keep the .tar.gz files after extraction")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        path = download_librispeech(args.subsets, args.root, args.mirror, args.keep_archives)
    except (DownloadError, ValueError) as error:
        print(f"download_librispeech: error: {error}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
