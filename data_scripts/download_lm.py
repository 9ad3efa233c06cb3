#!/usr/bin/env python3
"""Download LibriSpeech's official n-gram LMs, vocabulary and lexicon (OpenSLR resource 11).

    download_lm.py ROOT [--files 3-gram.pruned.1e-7.arpa.gz librispeech-vocab.txt ...] [--mirror openslr|us|eu|cn|URL]

Interrupted downloads resume (rerun the command); a file whose size differs from the published one
is deleted and refused (OpenSLR publishes no checksums for this resource); files in place are
skipped. Each ARPA LM is also unpacked in lower case (ROOT/3-gram.pruned.1e-7.arpa), and the
vocabulary becomes ROOT/lexicon.txt, a character lexicon for the beam search:

    asr evaluate MODEL MANIFEST --lm ROOT/3-gram.pruned.1e-7.arpa --lexicon ROOT/lexicon.txt
"""

import argparse
import logging
import sys

from asr.download import LIBRISPEECH_LM_MIRRORS, LIBRISPEECH_LM_SIZES, DownloadError, download_librispeech_lm


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", help="folder to download into")
    default = ["3-gram.pruned.1e-7.arpa.gz", "librispeech-vocab.txt", "librispeech-lexicon.txt"]
    parser.add_argument(
        "--files",
        nargs="+",
        default=default,
        choices=list(LIBRISPEECH_LM_SIZES),
        metavar="FILE",
        help=f"any of {', '.join(LIBRISPEECH_LM_SIZES)} (default: {' '.join(default)})",
    )
    parser.add_argument(
        "--mirror", default="openslr", help=f"{', '.join(LIBRISPEECH_LM_MIRRORS)} or a base URL (default: openslr)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        paths = download_librispeech_lm(args.files, args.root, args.mirror)
    except (DownloadError, ValueError) as error:
        print(f"download_lm: error: {error}", file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
