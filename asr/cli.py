"""The ``asr`` command: a thin layer over the Python API."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import logging
import math
import sys
from pathlib import Path

from .checkpoint import ModelFileError
from .files import check_output


def _counting_number(minimum: int):
    """An argparse type: an int of at least ``minimum`` (argparse's one-line error otherwise)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is less than {minimum}")
        return value

    return parse


def _positive_float(text: str) -> float:
    """An argparse type: a positive finite number."""
    try:
        value = _finite_float(text)
    except argparse.ArgumentTypeError:
        value = math.nan
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive finite number")
    return value


def _train(args: argparse.Namespace) -> int:
    from .config import load_config
    from .train import train

    config = load_config(args.config, args.overrides)
    model_path = train(config)
    print(model_path)
    return 0


def _adapt(args: argparse.Namespace) -> int:
    from .adapt import AdaptOptions, adapt

    check_output(args.output)
    options = AdaptOptions(
        held_out=args.held_out,
        steps=args.steps,
        lr=args.lr,
        batch_seconds=args.batch_seconds,
        freeze=tuple(args.freeze),
        renormalize=args.renormalize,
        stay_close=args.stay_close,
        seed=args.seed,
        device=args.device or "auto",
    )
    result = adapt(args.model, args.manifest, args.output, options, args.work_dir)
    verdict = "adapted" if result.adapted else "unchanged (adapting did not help on the held-out utterances)"
    print(f"held out ({result.held_out_utterances} utterances), before: {result.before}")
    print(f"held out ({result.held_out_utterances} utterances), after:  {result.after}")
    print(f"{result.output}: {verdict}")
    return 0


def _add_decoding_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("decoding (default: the model file's decoding config)")
    group.add_argument("--lm", help="KenLM n-gram LM (ARPA or binary); selects beam search")
    group.add_argument("--lexicon", help="lexicon (word, then its characters and |); restricts words to it")
    group.add_argument(
        "--hotwords",
        help="words or phrases to favour, one a line, each optionally followed by its boost (default "
        "6: the LM finds the word a million times likelier); words the lexicon lacks are added. Needs a lexicon",
    )
    group.add_argument("--beam-size", type=_counting_number(1))
    group.add_argument("--beam-threshold", type=_positive_float, help="drop hypotheses this far below the best")
    group.add_argument(
        "--beam-size-token", type=_counting_number(0), help="most likely tokens tried per frame (0: all)"
    )
    group.add_argument("--lm-weight", type=_finite_float)
    group.add_argument("--word-score", type=_finite_float)
    group.add_argument(
        "--vad", choices=["silero", "off"], help="voice-activity detection (Silero): no text where it hears no speech"
    )
    group.add_argument(
        "--allow-truncated",
        action="store_true",
        default=None,
        help="transcribe what a truncated file holds instead of reporting it",
    )


def _add_backend_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        choices=["auto", "torch", "onnxruntime", "torchscript"],
        default="auto",
        help="what runs the acoustic model: torch (a model file), onnxruntime or torchscript (a file from "
        "`asr export`); default: by the file",
    )


def _apply_decoding_options(recognizer, args: argparse.Namespace) -> None:
    """The recognizer's decoding config with the command line's decoding options in place."""
    changes = {}
    for name in (
        "lm",
        "lexicon",
        "hotwords",
        "beam_size",
        "beam_threshold",
        "beam_size_token",
        "lm_weight",
        "word_score",
        "vad",
        "allow_truncated",
    ):
        value = getattr(args, name)
        if value is not None:
            changes[name] = str(Path(value).resolve()) if name in ("lm", "lexicon", "hotwords") else value
    decoding = dataclasses.replace(recognizer.config.decoding, **changes)
    recognizer.config = dataclasses.replace(recognizer.config, decoding=decoding)
    recognizer.decoder()  # a missing LM or lexicon fails here, before any audio is read


def _lm_build(args: argparse.Namespace) -> int:
    from .decoding import write_lexicon
    from .lm import build_arpa, build_arpa_from_counts, read_sentences, symspellpy_count_files
    from .text import DEFAULT_CHARACTERS

    for output in [*args.paths[-1:], *([args.lexicon] if args.lexicon else [])]:
        check_output(output)
    if args.counts:
        if len(args.paths) != 1:
            raise ValueError("asr lm build --counts takes one path, the ARPA file to write")
        (out,) = args.paths
        files = symspellpy_count_files() if args.counts == "symspellpy" else tuple(args.counts.split(","))
        if len(files) != 2:
            raise ValueError(f"--counts {args.counts!r}: expected 'symspellpy' or WORD_COUNTS,PAIR_COUNTS")
        spellable = set(DEFAULT_CHARACTERS) - {" "}
        _, words = build_arpa_from_counts(*files, out, keep=lambda word: set(word) <= spellable)
    else:
        if len(args.paths) != 2:
            raise ValueError("asr lm build takes TEXT OUT (or --counts ... OUT)")
        text, out = args.paths
        build_arpa(text, out, args.order, characters=args.characters)
        words = [word for sentence in read_sentences(text) for word in sentence] if args.lexicon else []
    print(out)
    if args.lexicon:
        write_lexicon(words, args.lexicon)
        print(args.lexicon)
    return 0


def _tune_lm(args: argparse.Namespace) -> int:
    from .data import read_manifest
    from .evaluate import tune_lm
    from .recognizer import load_model

    out = check_output(args.out or Path(args.model))
    recognizer = load_model(args.model, device=args.device)
    utterances = read_manifest(args.manifest, None, skip_bad=args.skip_bad)
    lexicon = str(Path(args.lexicon).resolve()) if args.lexicon else ""
    results = tune_lm(recognizer, utterances, str(Path(args.lm).resolve()), lexicon, args.lm_weights, args.word_scores)
    print("lm_weight\tword_score\twer\tcer")
    for weight, score, rates in results:
        print(f"{weight:g}\t{score:g}\t{100 * rates.wer:.2f}\t{100 * rates.cer:.2f}")
    recognizer.save(out)
    best = results[0]
    print(f"best: lm_weight {best[0]:g}, word_score {best[1]:g}: {best[2]}; stored in {out}", file=sys.stderr)
    return 0


def _floats(text: str) -> list[float]:
    """An argparse type: comma-separated finite numbers (argparse's one-line error otherwise)."""
    try:
        values = [float(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None
    if not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: every value must be a finite number")
    return values


def _share(text: str) -> float:
    """An argparse type: a number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a number between 0 and 1")
    return value


def _finite_float(text: str) -> float:
    """An argparse type: a finite number."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number")
    return value


def _evaluate(args: argparse.Namespace) -> int:
    from .data import read_manifest
    from .evaluate import evaluate
    from .recognizer import load_model

    recognizer = load_model(args.model, device=args.device, backend=args.backend)
    _apply_decoding_options(recognizer, args)
    utterances = read_manifest(args.manifest, None, skip_bad=args.skip_bad)
    output = check_output(args.output or Path(args.model).parent / f"decode_{Path(args.manifest).stem}.jsonl")
    if args.report:
        check_output(args.report)
    settings = {"model": str(args.model), "manifest": str(args.manifest)}
    rates = evaluate(
        recognizer,
        utterances,
        output,
        args.batch_size,
        progress=not args.json,
        settings=settings,
        skip_bad=args.skip_bad,
    )
    if args.json:
        print(json.dumps(rates.as_dict()))
    else:
        print(rates)
        print(f"per-utterance results: {output}", file=sys.stderr)
    if args.report:
        from .report import write_report

        print(f"report: {write_report(output, args.report, args.train_log)}", file=sys.stderr)
    return 0


def _report(args: argparse.Namespace) -> int:
    from .report import ReportOptions, write_report

    if args.output:
        check_output(args.output)
    options = ReportOptions(
        worst=args.worst,
        sample=args.sample,
        audio=args.audio,
        audio_cap_mb=args.audio_cap_mb,
        characters=args.characters,
        seed=args.seed,
    )
    print(write_report(args.decode, args.output, args.train_log, options))
    return 0


def _transcribe(args: argparse.Namespace) -> int:
    import torch

    from .audio import find_audio_files
    from .recognizer import load_model
    from .transcribe import transcribe_stream
    from .writers import WRITERS

    failures = 0
    inputs: list[Path] = []
    for path in map(Path, args.paths):
        if path.is_dir():
            found = find_audio_files(path)
            if not found:
                print(f"asr: error: {path}: no audio files in this folder", file=sys.stderr)
                failures += 1
            inputs.extend(found)
        else:
            inputs.append(path)  # a missing or unreadable file is reported when it is read
    if args.output_dir is not None:
        check_output(args.output_dir, folder=True)
    if args.output_dir is None and args.format in ("srt", "vtt", "tsv") and len(inputs) > 1:
        raise ValueError(f"--format {args.format} for several inputs needs --output-dir (one file per input)")
    if args.threads:
        torch.set_num_threads(args.threads)
    recognizer = load_model(args.model, device=args.device, backend=args.backend)
    _apply_decoding_options(recognizer, args)
    write = functools.partial(WRITERS[args.format], word_level=args.word_timestamps)
    used_names: set[str] = set()
    transcribed = 0
    results = transcribe_stream(recognizer, inputs, args.batch_size, progress=sys.stderr.isatty())
    for result in results:
        if result.error:
            print(f"asr: error: {result.error}", file=sys.stderr)
            failures += 1
            continue
        transcribed += 1
        if args.output_dir is not None:
            name = Path(result.source).stem
            while name in used_names:  # two inputs with one name (from different folders)
                name += "_"
            used_names.add(name)
            args.output_dir.mkdir(parents=True, exist_ok=True)
            (args.output_dir / f"{name}.{args.format}").write_text(write(result), encoding="utf-8")
        elif args.format == "txt" and len(inputs) > 1:
            print(f"{result.source}\t{result.text}", flush=True)
        else:
            sys.stdout.write(write(result))
            sys.stdout.flush()
    if failures:
        print(f"asr: {transcribed} transcribed, {failures} failed", file=sys.stderr)
    return 1 if failures else 0


def _listen(args: argparse.Namespace) -> int:
    from .recognizer import load_model
    from .stream import microphone_blocks, replay_blocks

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    recognizer = load_model(args.model, device=args.device, backend=args.backend)
    _apply_decoding_options(recognizer, args)
    if args.input:
        blocks = replay_blocks(args.input, recognizer.sample_rate, realtime=not args.as_fast_as_possible)
    else:
        blocks = microphone_blocks(recognizer.sample_rate)
    stream = recognizer.stream(args.chunk_seconds, args.lookahead_seconds)
    show = _LiveDisplay(sys.stderr.isatty())
    try:
        for block in blocks:
            show(stream.feed(block))
    except KeyboardInterrupt:
        pass  # Ctrl-C: what was heard so far is still decoded and printed below
    show(stream.finish())
    return 0


class _LiveDisplay:
    """Final segments on stdout, one line each; the partial text on stderr, redrawn in place on a
    terminal, else a line each time it changes."""

    def __init__(self, terminal: bool):
        self.terminal = terminal
        self.last = ""

    def __call__(self, update) -> None:
        if update.final and self.terminal and self.last:
            print("\r\033[K", end="", file=sys.stderr)
        for segment in update.final:
            print(f"[{segment.start:.2f} --> {segment.end:.2f}] {segment.text}", flush=True)
        if update.final:
            self.last = ""
        if update.partial != self.last:
            if self.terminal:
                print(f"\r\033[K{update.partial}", end="", file=sys.stderr, flush=True)
            elif update.partial:
                print(f"... {update.partial}", file=sys.stderr, flush=True)
            self.last = update.partial


MAX_TRANSCRIPT_BYTES = 10 << 20  # align's transcript: far more words than an hour of speech holds


def _align(args: argparse.Namespace) -> int:
    from .audio import load_audio
    from .files import open_text
    from .recognizer import load_model
    from .transcribe import words_to_transcription
    from .writers import WRITERS

    if args.transcript == "-":
        text = sys.stdin.read(MAX_TRANSCRIPT_BYTES + 1)
        if len(text) > MAX_TRANSCRIPT_BYTES:
            raise ValueError(f"standard input: a transcript of more than {MAX_TRANSCRIPT_BYTES:,} characters")
    else:
        with open_text(args.transcript, MAX_TRANSCRIPT_BYTES) as transcript:
            text = transcript.read()
    recognizer = load_model(args.model, device=args.device)
    samples = load_audio(args.audio, recognizer.sample_rate)
    words = recognizer.align(samples, text)
    if not words and text.strip():
        raise ValueError(
            f"{args.audio}: too short for the transcript {args.transcript} "
            "(or no word of it is in the model's alphabet)"
        )
    result = words_to_transcription(
        str(args.audio), words, len(samples) / recognizer.sample_rate, recognizer.config.decoding
    )
    sys.stdout.write(WRITERS[args.format](result, word_level=args.word_timestamps))
    return 0


def _export_model(args: argparse.Namespace) -> int:
    from .config import apply_overrides, config_from_dict, config_to_dict
    from .recognizer import load_model

    check_output(args.out)
    recognizer = load_model(args.checkpoint, device="cpu")
    for item in args.overrides:
        if not item.startswith("decoding."):
            raise ValueError(f"export-model overrides only decoding settings, not {item!r}")
    recognizer.config = config_from_dict(apply_overrides(config_to_dict(recognizer.config), args.overrides))
    recognizer.save(args.out)
    print(args.out)
    return 0


def _export(args: argparse.Namespace) -> int:
    from .recognizer import load_model

    check_output(args.out)
    recognizer = load_model(args.model, device="cpu", backend="torch")
    print(recognizer.export(args.out, args.format, args.int8))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``asr`` command line: one subcommand per task, each a thin layer over the package."""
    parser = argparse.ArgumentParser(prog="asr", description="Train and use CTC speech recognisers.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_training_commands(commands)
    _add_transcription_commands(commands)
    _add_model_commands(commands)
    return parser


def _add_training_commands(commands: argparse._SubParsersAction) -> None:
    """``asr train``, ``asr adapt`` and ``asr evaluate``."""
    train = commands.add_parser("train", help="train a model from a YAML recipe config")
    train.add_argument("config", help="YAML config (see recipes/)")
    train.add_argument(
        "overrides",
        nargs="*",
        metavar="section.key=value|FILE.yaml",
        help="override config values, or lay another YAML config over it",
    )
    train.set_defaults(run=_train)

    _add_adapt_command(commands)

    evaluate = commands.add_parser("evaluate", help="decode a manifest and print WER and CER")
    evaluate.add_argument("model", help="model file or training checkpoint")
    evaluate.add_argument("manifest", help="JSON-lines manifest (audio_filepath, duration, text)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object (rates as fractions)")
    evaluate.add_argument("--output", type=Path, help="per-utterance results (default: beside the model)")
    evaluate.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda when available)")
    evaluate.add_argument(
        "--batch-size", type=_counting_number(1), default=16, help="chunks (of up to 30 s) decoded together"
    )
    evaluate.add_argument(
        "--skip-bad", action="store_true", help="skip bad manifest lines and unreadable audio with a warning each"
    )
    evaluate.add_argument("--report", type=Path, help="also write an HTML report of the errors (see asr report)")
    evaluate.add_argument("--train-log", type=Path, help="with --report: the model's train_log.csv, plotted")
    _add_backend_option(evaluate)
    _add_decoding_options(evaluate)
    evaluate.set_defaults(run=_evaluate)

    report = commands.add_parser(
        "report", help="one self-contained HTML page of what a model gets wrong (from asr evaluate's decode file)"
    )
    report.add_argument("decode", type=Path, help="per-utterance JSON lines written by asr evaluate")
    report.add_argument("-o", "--output", type=Path, required=True, help="HTML file to write")
    report.add_argument("--train-log", type=Path, help="train_log.csv: loss, LR, gradient norm and dev WER by step")
    report.add_argument("--audio", action="store_true", help="embed a player with each listed utterance's audio")
    report.add_argument(
        "--audio-cap-mb", type=_positive_float, default=20.0, help="embedded audio in all (default 20 MB)"
    )
    report.add_argument("--worst", type=_counting_number(0), default=30, help="worst utterances listed (default 30)")
    report.add_argument("--sample", type=_counting_number(0), default=30, help="random utterances listed (default 30)")
    report.add_argument(
        "--characters",
        choices=["auto", "always", "never"],
        default="auto",
        help="character alignments (auto: when WER >= 50%%)",
    )
    report.add_argument("--seed", type=int, default=0, help="of the random sample")
    report.set_defaults(run=_report)


def _add_adapt_command(commands: argparse._SubParsersAction) -> None:
    """``asr adapt``."""
    adapt = commands.add_parser(
        "adapt",
        help="fine-tune a model on a few minutes of your own transcribed speech",
        description="Fine-tune MODEL on MANIFEST's utterances (a few minutes of one speaker or domain help "
        "most: docs/adaptation.md). Part of them is held out to choose the step count and to show the "
        "error before and after; the output keeps the model's decoding settings (LM, lexicon, hot words), "
        "and is the original model when adapting did not help. Rerunning resumes an interrupted run.",
    )
    adapt.add_argument("model", help="model file to start from")
    adapt.add_argument("manifest", help="JSON-lines manifest of your speech (audio_filepath, duration, text)")
    adapt.add_argument("-o", "--output", required=True, type=Path, help="the adapted model file to write")
    adapt.add_argument("--held-out", type=_share, default=0.2, help="share of the utterances held out (default 0.2)")
    adapt.add_argument("--steps", type=_counting_number(1), default=200, help="optimiser steps (default 200)")
    adapt.add_argument("--lr", type=_positive_float, default=5e-5, help="learning rate (default 5e-5)")
    adapt.add_argument(
        "--batch-seconds", type=_positive_float, default=20.0, help="padded audio seconds per batch (default 20)"
    )
    adapt.add_argument(
        "--freeze", action="append", default=[], metavar="PREFIX", help="parameters not trained (a name prefix)"
    )
    adapt.add_argument(
        "--renormalize", action="store_true", help="re-estimate the feature mean and variance on your speech"
    )
    adapt.add_argument(
        "--stay-close",
        type=_finite_float,
        default=0.0,
        help="pull towards the original weights: S * |w - w0|^2 added to the loss (default 0: off)",
    )
    adapt.add_argument("--seed", type=int, default=1234)
    adapt.add_argument("--work-dir", type=Path, help="the training run's folder (default: OUTPUT.adapt/)")
    adapt.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda when available)")
    adapt.set_defaults(run=_adapt)


def _add_transcription_commands(commands: argparse._SubParsersAction) -> None:
    """``asr transcribe``, ``asr listen`` and ``asr align``."""
    transcribe = commands.add_parser("transcribe", help="transcribe audio files (folders expand to the audio in them)")
    transcribe.add_argument("model", help="model file or training checkpoint")
    transcribe.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders")
    transcribe.add_argument(
        "--format", choices=["txt", "json", "srt", "vtt", "tsv"], default="txt", help="output format (default: txt)"
    )
    transcribe.add_argument(
        "--word-timestamps",
        action="store_true",
        help="srt, vtt, tsv: one cue (row) per word, not per segment (json always has words)",
    )
    transcribe.add_argument("--output-dir", type=Path, help="write one file per input here instead of to stdout")
    transcribe.add_argument(
        "--batch-size", type=_counting_number(1), default=16, help="chunks (of up to 30 s) decoded together"
    )
    transcribe.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda when available)")
    transcribe.add_argument(
        "--threads", type=_counting_number(0), default=0, help="torch CPU threads (default: torch's choice)"
    )
    _add_backend_option(transcribe)
    _add_decoding_options(transcribe)
    transcribe.set_defaults(run=_transcribe)

    listen = commands.add_parser(
        "listen", help="transcribe the microphone live (Ctrl-C to stop), or replay a file through the same path"
    )
    listen.add_argument("model", help="model file, checkpoint or exported model")
    listen.add_argument("--input", help="an audio file replayed at real time instead of the microphone")
    listen.add_argument("--as-fast-as-possible", action="store_true", help="with --input: do not wait for real time")
    listen.add_argument(
        "--chunk-seconds", type=_positive_float, default=1.0, help="audio decoded at a time (default 1)"
    )
    listen.add_argument(
        "--lookahead-seconds",
        type=float,
        default=0.5,
        help="audio after each chunk the model hears before its words are shown (default 0.5)",
    )
    listen.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda when available)")
    listen.add_argument("--threads", type=_counting_number(0), default=0, help="torch CPU threads")
    _add_backend_option(listen)
    _add_decoding_options(listen)
    listen.set_defaults(run=_listen)

    align = commands.add_parser("align", help="when each word of a known transcript was said (CTC forced alignment)")
    align.add_argument("model", help="model file or training checkpoint")
    align.add_argument("audio", help="one audio file")
    align.add_argument("transcript", help="text file with what is said in it (- for standard input)")
    align.add_argument(
        "--format",
        choices=["json", "srt", "vtt", "tsv"],
        default="json",
        help="output format (default: json, with each word's times and confidence)",
    )
    align.add_argument("--word-timestamps", action="store_true", help="srt, vtt, tsv: one cue (row) per word")
    align.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda when available)")
    align.set_defaults(run=_align)


def _add_model_commands(commands: argparse._SubParsersAction) -> None:
    """``asr export-model``, ``asr export``, ``asr tune-lm`` and ``asr lm build``."""
    export = commands.add_parser(
        "export-model", help="write a self-contained model file from a checkpoint or model file"
    )
    export.add_argument("checkpoint", help="training checkpoint (checkpoint.pt, best.pt) or model file")
    export.add_argument("out", type=Path, help="model file to write")
    export.add_argument("overrides", nargs="*", metavar="decoding.key=value", help="decoding settings to store")
    export.set_defaults(run=_export_model)

    deploy = commands.add_parser(
        "export", help="write the acoustic model (features + network) as ONNX or TorchScript, fp32 or int8"
    )
    deploy.add_argument("model", help="model file or training checkpoint")
    deploy.add_argument("out", type=Path, help="file to write (e.g. model.onnx)")
    deploy.add_argument("--format", choices=["onnx", "torchscript"], default="onnx", help="default: onnx")
    deploy.add_argument(
        "--int8", action="store_true", help="int8 weights (dynamic quantization of the RNN and linear layers)"
    )
    deploy.set_defaults(run=_export)

    tune = commands.add_parser(
        "tune-lm", help="search LM weight and word score on a dev set; store the best in the model file"
    )
    tune.add_argument("model", help="model file")
    tune.add_argument("manifest", help="dev manifest")
    tune.add_argument("--lm", required=True, help="KenLM n-gram LM (ARPA or binary)")
    tune.add_argument("--lexicon", help="lexicon for a word LM (none: lexicon-free, character LM)")
    tune.add_argument(
        "--lm-weights",
        type=_floats,
        default=[0.0, 0.5, 1.0, 1.5, 2.0, 3.0],
        help="comma-separated (default 0,0.5,1,1.5,2,3)",
    )
    tune.add_argument(
        "--word-scores", type=_floats, default=[-1.0, 0.0, 1.0, 2.0], help="comma-separated (default -1,0,1,2)"
    )
    tune.add_argument("--out", type=Path, help="model file to write (default: overwrite MODEL)")
    tune.add_argument("--device", default=None)
    tune.add_argument("--skip-bad", action="store_true")
    tune.set_defaults(run=_tune_lm)

    lm = commands.add_parser("lm", help="n-gram language models").add_subparsers(dest="lm_command", required=True)
    build = lm.add_parser(
        "build", help="estimate a modified Kneser-Ney ARPA LM from text (one sentence per line) or from word counts"
    )
    build.add_argument(
        "paths",
        nargs="+",
        metavar="[TEXT] OUT",
        help="text file (one sentence per line) or JSON-lines manifest (its text fields), then the ARPA file "
        "to write; with --counts only OUT",
    )
    build.add_argument(
        "--counts",
        metavar="symspellpy|WORDS,PAIRS",
        help="a bigram LM from word and word-pair count files instead of text: "
        "'symspellpy' for the English Google Books counts bundled with symspellpy "
        "(no download), or two files of 'word count' and 'word word count' lines",
    )
    build.add_argument("--order", type=_counting_number(1), default=3)
    build.add_argument(
        "--characters", action="store_true", help="a character LM (| between words), for lexicon-free beam search"
    )
    build.add_argument(
        "--lexicon", type=Path, help="also write a lexicon of the text's words (for lexicon-constrained beam search)"
    )
    build.set_defaults(run=_lm_build)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``asr`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return args.run(args)
    except (ValueError, ModelFileError, FileNotFoundError) as error:  # our errors name the file and the problem
        print(f"asr: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # the system's (permissions, a full disk, ...): its file and its words
        where = f"{error.filename}: " if error.filename else ""
        print(f"asr: error: {where}{error.strerror or error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("asr: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
