#!/usr/bin/env python3
"""Turn a LibriSpeech-layout folder (FLAC, WAV or MP3 audio) into a JSON-lines manifest.

Split one folder by speaker, e.g. train on all speakers but 84 and 174 and test on those two:
    prepare_librispeech.py DIR train.jsonl --exclude-speakers 84 174
    prepare_librispeech.py DIR test.jsonl --include-speakers 84 174
"""

import argparse

from asr.librispeech import make_manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", help="LibriSpeech-layout folder (searched recursively for *.trans.txt)")
    parser.add_argument("manifest", help="output JSON-lines manifest")
    parser.add_argument("--include-speakers", nargs="+", help="keep only these speaker ids")
    parser.add_argument("--exclude-speakers", nargs="+", help="drop these speaker ids")
    parser.add_argument("--workers", type=int, default=8, help="threads reading file headers")
    args = parser.parse_args()
    include = set(args.include_speakers) if args.include_speakers else None
    exclude = set(args.exclude_speakers) if args.exclude_speakers else None
    count = make_manifest(args.root, args.manifest, include, exclude, args.workers)
    print(f"{args.manifest}: {count} utterances")


if __name__ == "__main__":
    main()
