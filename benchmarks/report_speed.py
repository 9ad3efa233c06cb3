#!/usr/bin/env python3
"""How long ``asr report`` takes and how big the page is, for a decode file of a given size.

    python benchmarks/report_speed.py DECODE.jsonl [--utterances 1000] [--audio] [--train-log LOG]

The decode file (written by ``asr evaluate``) is repeated line by line until it holds
``--utterances`` lines (a real decode of fewer utterances gives a realistic mix of errors), then
the page is written as ``asr report`` writes it; printed: seconds, megabytes, utterances.
Targets: 1,000 utterances in under 30 s and under 10 MB without audio.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import tempfile
import time
from pathlib import Path

from machine import cpu_name  # benchmarks/machine.py, beside this script

from asr.report import ReportOptions, write_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("decode", type=Path, help="decode file written by asr evaluate")
    parser.add_argument("--utterances", type=int, default=1000)
    parser.add_argument("--audio", action="store_true", help="embed audio (20 MB cap)")
    parser.add_argument("--train-log", type=Path, help="train_log.csv to plot too")
    parser.add_argument("--output", type=Path, help="keep the page here (default: a temporary file)")
    args = parser.parse_args()

    lines = [line for line in args.decode.read_text(encoding="utf-8").splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as folder:
        decode = Path(folder) / "decode.jsonl"
        decode.write_text("\n".join(itertools.islice(itertools.cycle(lines), args.utterances)) + "\n", encoding="utf-8")
        output = args.output or Path(folder) / "report.html"
        start = time.perf_counter()
        write_report(decode, output, args.train_log, ReportOptions(audio=args.audio))
        seconds = time.perf_counter() - start
        megabytes = output.stat().st_size / 1e6
    print(f"machine: {cpu_name()}, Python {platform.python_version()}")
    print(f"utterances: {args.utterances} (from {len(lines)} in {args.decode})")
    print(f"report: {seconds:.2f} s, {megabytes:.2f} MB{' with audio' if args.audio else ''}")
    ok = seconds < 30 and (args.audio or megabytes < 10)
    print(f"targets (< 30 s, < 10 MB without audio): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
