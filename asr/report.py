"""One self-contained HTML page about a decode: what the model gets wrong, and how its training went.

The page is a single static file: plots are PNGs (matplotlib) embedded as data URIs, audio clips
(optional) likewise, no script and no server, so it opens from disk and can be mailed. Its input is
the per-utterance JSON-lines file that ``asr evaluate`` writes (``audio_filepath``, ``reference``,
``hypothesis``; ``duration`` and ``speaker`` when known) and, when present beside it, the
``.settings.json`` that records the model and decoding settings.
"""

from __future__ import annotations

import base64
import csv
import datetime
import html
import io
import json
import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import jiwer

from .files import open_text
from .metrics import ErrorRates, alignment_errors, error_rates

# Browsers play these containers; other formats are listed without a player.
AUDIO_TYPES = {
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".flac": "audio/flac",
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
}
DURATION_BUCKETS = [0.0, 2.0, 5.0, 10.0, 15.0, 20.0, float("inf")]  # seconds
LIBRISPEECH_ID = re.compile(r"^(\d+)-\d+-\d+$")  # speaker-chapter-utterance


class ReportError(ValueError):
    """A decode file or training log the report cannot use (the message names the file)."""


@dataclass(frozen=True)
class DecodedUtterance:
    """One line of a decode file."""

    audio_filepath: str
    reference: str
    hypothesis: str
    duration: float | None = None
    speaker: str = ""


@dataclass(frozen=True)
class ReportOptions:
    """What the page shows."""

    worst: int = 30  # utterances listed by highest WER
    sample: int = 30  # utterances listed at random, to be fair
    top_errors: int = 25  # rows of each frequent-error table
    audio: bool = False  # embed each listed utterance's audio
    audio_cap_mb: float = 20.0  # embedded audio in all; clips beyond it are left out with a note
    characters: str = "auto"  # character alignments: auto (when WER >= 50%) | always | never
    seed: int = 0  # of the random sample


def settings_path(decode_path: str | Path) -> Path:
    """Where ``asr evaluate`` records the model and decoding settings of ``decode_path``."""
    decode_path = Path(decode_path)
    return decode_path.with_name(decode_path.stem + ".settings.json")


def speaker_of(row: dict) -> str:
    """The row's ``speaker``, else the speaker of a LibriSpeech-style file name (``84-121123-0000``)."""
    if row.get("speaker"):
        return str(row["speaker"])
    match = LIBRISPEECH_ID.match(Path(str(row.get("audio_filepath", ""))).stem)
    return match.group(1) if match else ""


def read_decode_file(path: str | Path) -> list[DecodedUtterance]:
    """The utterances of a decode file; :class:`ReportError` for a missing, empty or malformed one."""
    path = Path(path)
    if not path.is_file():
        raise ReportError(f"{path}: no such decode file")
    utterances = []
    with open_text(path) as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                reference, hypothesis = row["reference"], row["hypothesis"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise ReportError(
                    f"{path}:{number}: not a decode line (a JSON object with reference and hypothesis)"
                ) from None
            duration = row.get("duration")
            utterances.append(
                DecodedUtterance(
                    audio_filepath=str(row.get("audio_filepath", "")),
                    reference=str(reference),
                    hypothesis=str(hypothesis),
                    duration=float(duration) if isinstance(duration, (int, float)) else None,
                    speaker=speaker_of(row),
                )
            )
    if not utterances:
        raise ReportError(f"{path}: the decode file has no utterances")
    if any(not u.reference.strip() for u in utterances):
        first = next(n for n, u in enumerate(utterances, 1) if not u.reference.strip())
        raise ReportError(f"{path}: utterance {first} has an empty reference, so it has no error rate")
    return utterances


def read_settings(path: Path) -> dict:
    """A decode file's settings (what ``asr evaluate`` wrote beside it); :class:`ReportError` for
    one that is not a JSON object."""
    with open_text(path) as f:
        try:
            settings = json.load(f)
        except json.JSONDecodeError:
            raise ReportError(f"{path}: not JSON (a decode file's settings)") from None
    if not isinstance(settings, dict):
        raise ReportError(f"{path}: not a decode file's settings (a JSON object)")
    return settings


def read_train_log(path: str | Path) -> dict[str, list[tuple[float, float]]]:
    """Series (step, value) from ``train_log.csv``: loss, lr, grad_norm; dev_wer and dev_cer from the
    ``dev_log.csv`` beside it when there is one."""
    path = Path(path)
    if not path.is_file():
        raise ReportError(f"{path}: no such training log")
    series: dict[str, list[tuple[float, float]]] = {}
    for log_path, columns in (
        (path, ("loss", "lr", "grad_norm")),
        (path.with_name("dev_log.csv"), ("dev_wer", "dev_cer")),
    ):
        if not log_path.is_file():
            continue
        with open_text(log_path) as f:
            reader = csv.DictReader(f)
            if "step" not in (reader.fieldnames or []):
                raise ReportError(f"{log_path}: not a training log (no step column)")
            for row in reader:
                for column in columns:
                    if row.get(column) not in (None, ""):
                        series.setdefault(column, []).append((float(row["step"]), float(row[column])))
    if not series:
        raise ReportError(f"{path}: the training log has no rows")
    return series


@dataclass
class Scored:
    """The decode scored: corpus rates and each utterance's word alignment."""

    rates: ErrorRates
    words: jiwer.WordOutput
    utterance_errors: list[int]
    utterance_words: list[int]

    def wer(self, index: int) -> float:
        return self.utterance_errors[index] / max(self.utterance_words[index], 1)


def score(utterances: list[DecodedUtterance]) -> Scored:
    """Corpus WER/CER (as ``asr evaluate`` computes them) and per-utterance word edits."""
    references = [u.reference for u in utterances]
    hypotheses = [u.hypothesis for u in utterances]
    words = jiwer.process_words(references, hypotheses)
    errors, lengths = [], []
    for chunks, reference in zip(words.alignments, words.references):
        errors.append(alignment_errors(chunks))
        lengths.append(len(reference))
    return Scored(error_rates(references, hypotheses), words, errors, lengths)


# --- plots -------------------------------------------------------------------------------------


def _png(figure) -> str:
    """A matplotlib figure as an ``<img>`` data URI."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(width: float = 6.0, height: float = 3.4):
    from matplotlib.figure import Figure  # no pyplot: no global state, no display backend

    figure = Figure(figsize=(width, height))
    return figure, figure.add_subplot()


def _grouped_wer(scored: Scored, keys: list) -> dict:
    """WER (errors / reference words) and utterance count of each key's utterances."""
    errors: Counter = Counter()
    words: Counter = Counter()
    counts: Counter = Counter()
    for index, key in enumerate(keys):
        errors[key] += scored.utterance_errors[index]
        words[key] += scored.utterance_words[index]
        counts[key] += 1
    return {key: (errors[key] / max(words[key], 1), counts[key]) for key in counts}


def _bar_plot(labels: list[str], groups: list[tuple[float, int]], title: str, xlabel: str) -> str:
    figure, axes = _figure(max(6.0, 0.35 * len(labels)), 3.4)
    bars = axes.bar(range(len(labels)), [100 * wer for wer, _ in groups], color="#4878a8")
    axes.bar_label(bars, labels=[f"n={n}" for _, n in groups], fontsize=7)
    axes.set_xticks(
        range(len(labels)), labels, rotation=45 if len(labels) > 8 else 0, ha="right" if len(labels) > 8 else "center"
    )
    axes.set_ylabel("WER (%)")
    axes.set_xlabel(xlabel)
    axes.set_title(title)
    return _png(figure)


def duration_plot(utterances: list[DecodedUtterance], scored: Scored) -> str | None:
    """WER by utterance duration bucket, or None when the decode file has no durations."""
    if any(u.duration is None for u in utterances):
        return None
    edges = DURATION_BUCKETS
    names = [f"{lo:g}-{hi:g} s" if hi != float("inf") else f">= {lo:g} s" for lo, hi in zip(edges, edges[1:])]
    keys = [next(i for i in range(len(names)) if u.duration < edges[i + 1]) for u in utterances]
    grouped = _grouped_wer(scored, keys)
    present = sorted(grouped)
    return _bar_plot(
        [names[i] for i in present], [grouped[i] for i in present], "WER by utterance duration", "duration"
    )


def speaker_plot(utterances: list[DecodedUtterance], scored: Scored) -> str | None:
    """WER per speaker (worst first, at most 40), or None with fewer than two known speakers."""
    if any(not u.speaker for u in utterances) or len({u.speaker for u in utterances}) < 2:
        return None
    grouped = _grouped_wer(scored, [u.speaker for u in utterances])
    speakers = sorted(grouped, key=lambda s: -grouped[s][0])[:40]
    return _bar_plot(speakers, [grouped[s] for s in speakers], "WER per speaker", "speaker")


def length_plot(scored: Scored) -> str:
    """Hypothesis length against reference length, in words: under the diagonal the model drops words."""
    figure, axes = _figure(4.6, 4.0)
    reference = [len(r) for r in scored.words.references]
    hypothesis = [len(h) for h in scored.words.hypotheses]
    axes.scatter(reference, hypothesis, s=10, alpha=0.5, color="#4878a8")
    top = max(reference + hypothesis + [1])
    axes.plot([0, top], [0, top], color="grey", linewidth=1, linestyle="--")
    axes.set_xlabel("reference words")
    axes.set_ylabel("hypothesis words")
    axes.set_title("Hypothesis against reference length")
    return _png(figure)


def training_plot(series: dict[str, list[tuple[float, float]]]) -> str:
    """Loss, learning rate, gradient norm and dev error rates against step."""
    from matplotlib.figure import Figure

    panels = [
        (name, title)
        for name, title in (
            ("loss", "training loss"),
            ("lr", "learning rate"),
            ("grad_norm", "gradient norm"),
            ("dev", "dev error rate (%)"),
        )
        if name in series or (name == "dev" and ("dev_wer" in series or "dev_cer" in series))
    ]
    figure = Figure(figsize=(9.0, 2.6 * ((len(panels) + 1) // 2)))
    for number, (name, title) in enumerate(panels, 1):
        axes = figure.add_subplot((len(panels) + 1) // 2, 2, number)
        if name == "dev":
            for column, label in (("dev_wer", "WER"), ("dev_cer", "CER")):
                if column in series:
                    steps, values = zip(*series[column])
                    axes.plot(steps, [100 * v for v in values], marker="o", markersize=3, label=label)
            axes.legend(fontsize=8)
        else:
            steps, values = zip(*series[name])
            axes.plot(steps, values, linewidth=0.6, color="#4878a8")
            if name == "loss" and len(values) >= 20:
                window = max(len(values) // 50, 5)
                smooth = [sum(values[max(0, i - window + 1) : i + 1]) / min(i + 1, window) for i in range(len(values))]
                axes.plot(steps, smooth, linewidth=1.2, color="#c0504d", label=f"mean of {window} steps")
                axes.legend(fontsize=8)
        axes.set_title(title, fontsize=10)
        axes.set_xlabel("step", fontsize=8)
        axes.tick_params(labelsize=8)
    figure.tight_layout()
    return _png(figure)


# --- HTML ----------------------------------------------------------------------------------------

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.5em 0; } td, th { border: 1px solid #ddd; padding: 0.2em 0.6em; }
th { background: #f3f3f3; text-align: left; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.plots img { margin: 0.5em; border: 1px solid #eee; vertical-align: top; max-width: 100%; }
.tables { display: flex; flex-wrap: wrap; gap: 2em; }
.utt { border: 1px solid #ddd; border-radius: 4px; padding: 0.5em 0.8em; margin: 0.8em 0; }
.utt .head { color: #555; font-size: 0.9em; margin-bottom: 0.3em; }
.align { line-height: 1.1; font-family: ui-monospace, monospace; font-size: 0.92em; }
.align span.c { display: inline-block; margin: 0 0.25em 0.5em 0; vertical-align: top; }
.align span.c span { display: block; white-space: pre; padding: 0 0.15em; }
.align .r { color: #222; } .align .h { color: #555; }
.S span { background: #fde2a8; } .D .r { background: #f6b6b6; } .I .h { background: #b9e4b9; }
.key span { padding: 0 0.4em; margin-right: 1em; }
.note { color: #8a5a00; font-size: 0.9em; }
audio { display: block; margin-top: 0.4em; height: 2em; }
"""

CHUNK_CLASS = {"equal": "", "substitute": "S", "delete": "D", "insert": "I"}


def alignment_html(reference: list[str], hypothesis: list[str], chunks, separator: str = " ") -> str:
    """Reference above hypothesis, chunk by chunk, errors coloured (S, D, I classes); ``separator``
    joins the tokens of a chunk (a space for words, nothing for characters)."""
    pairs = []  # (kind, reference text, hypothesis text), one per cell
    for chunk in chunks:
        ref = reference[chunk.ref_start_idx : chunk.ref_end_idx]
        hyp = hypothesis[chunk.hyp_start_idx : chunk.hyp_end_idx]
        if chunk.type == "substitute" and separator:  # words: each substituted word over its replacement
            pairs += [(chunk.type, r, h) for r, h in zip(ref, hyp)]
        else:
            pairs.append((chunk.type, separator.join(ref), separator.join(hyp)))
    cells = []
    for kind, ref, hyp in pairs:
        if not separator:  # characters: make spaces visible
            ref, hyp = ref.replace(" ", "\u2423"), hyp.replace(" ", "\u2423")
        cells.append(
            f'<span class="c {CHUNK_CLASS[kind]}"><span class="r">{html.escape(ref) or "&nbsp;"}</span>'
            f'<span class="h">{html.escape(hyp) or "&nbsp;"}</span></span>'
        )
    return '<div class="align">' + "".join(cells) + "</div>"


class AudioBudget:
    """Embeds clips as data URIs until the cap is spent; says why a clip is left out."""

    def __init__(self, cap_mb: float):
        self.left = int(cap_mb * 1e6)
        self.cap_mb = cap_mb

    def html(self, audio_filepath: str) -> str:
        path = Path(audio_filepath)
        mime = AUDIO_TYPES.get(path.suffix.lower())
        if not path.is_file():
            return f'<div class="note">audio not embedded: {html.escape(str(path))} not found</div>'
        if mime is None:
            return f'<div class="note">audio not embedded: browsers do not play {html.escape(path.suffix)} files</div>'
        size = path.stat().st_size
        if size > self.left:
            return (
                f'<div class="note">audio not embedded: this clip ({size / 1e6:.1f} MB) would pass the page\'s '
                f"{self.cap_mb:g} MB audio cap (--audio-cap-mb)</div>"
            )
        self.left -= size
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'<audio controls preload="none" src="data:{mime};base64,{data}"></audio>'


def utterance_html(
    index: int, utterance: DecodedUtterance, scored: Scored, characters: bool, audio: AudioBudget | None
) -> str:
    """One listed utterance: its figures, the word alignment, the character one and audio when asked."""
    words = scored.words
    head = (
        f"#{index + 1} <strong>{html.escape(Path(utterance.audio_filepath).name or '(no file)')}</strong>"
        f" &middot; WER {100 * scored.wer(index):.1f}% ({scored.utterance_errors[index]} errors in"
        f" {scored.utterance_words[index]} words)"
        + (f" &middot; {utterance.duration:.1f} s" if utterance.duration is not None else "")
        + (f" &middot; speaker {html.escape(utterance.speaker)}" if utterance.speaker else "")
    )
    parts = [f'<div class="utt"><div class="head">{head}</div>']
    parts.append(alignment_html(words.references[index], words.hypotheses[index], words.alignments[index]))
    if characters:
        chars = jiwer.process_characters(utterance.reference, utterance.hypothesis)
        parts.append(
            f'<div class="head">characters: CER {100 * chars.cer:.1f}%</div>'
            + alignment_html(chars.references[0], chars.hypotheses[0], chars.alignments[0], separator="")
        )
    if audio is not None:
        parts.append(audio.html(utterance.audio_filepath))
    parts.append("</div>")
    return "".join(parts)


def _count_table(title: str, header: tuple[str, ...], rows: list[tuple]) -> str:
    cells = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row[:-1]) + f'<td class="n">{row[-1]}</td></tr>'
        for row in rows
    )
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    cells = cells or f"<tr><td colspan={len(header)}>none</td></tr>"
    return f"<div><h3>{html.escape(title)}</h3><table><tr>{head}</tr>{cells}</table></div>"


def frequent_errors_html(scored: Scored, top: int) -> str:
    """Tables of the most frequent substitution pairs, deleted words and inserted words.

    Counted word by word: jiwer's ``collect_error_counts`` keeps a run of substitutions as one
    phrase pair, which would hide the frequent single-word confusions."""
    substitutions: Counter = Counter()
    deletions: Counter = Counter()
    insertions: Counter = Counter()
    words = scored.words
    for chunks, reference, hypothesis in zip(words.alignments, words.references, words.hypotheses):
        for c in chunks:
            ref, hyp = reference[c.ref_start_idx : c.ref_end_idx], hypothesis[c.hyp_start_idx : c.hyp_end_idx]
            if c.type == "substitute":
                substitutions.update(zip(ref, hyp))
            elif c.type == "delete":
                deletions.update(ref)
            elif c.type == "insert":
                insertions.update(hyp)
    pairs = [(r, h, n) for (r, h), n in substitutions.most_common(top)]
    return (
        '<div class="tables">'
        + "".join(
            [
                _count_table("Substitutions", ("reference", "hypothesis", "count"), pairs),
                _count_table("Deleted words", ("word", "count"), deletions.most_common(top)),
                _count_table("Inserted words", ("word", "count"), insertions.most_common(top)),
            ]
        )
        + "</div>"
    )


def summary_html(rates: ErrorRates, settings: dict, source: Path) -> str:
    """The summary table (each figure in a cell with an id, so tools can read it back) and settings."""
    figures = [
        ("wer", "WER", f"{100 * rates.wer:.2f}%"),
        ("cer", "CER", f"{100 * rates.cer:.2f}%"),
        ("substitutions", "substitutions", rates.substitutions),
        ("deletions", "deletions", rates.deletions),
        ("insertions", "insertions", rates.insertions),
        ("reference_words", "reference words", rates.reference_words),
        ("utterances", "utterances", rates.utterances),
    ]
    rows = "".join(f'<tr><th>{label}</th><td class="n" id="{key}">{value}</td></tr>' for key, label, value in figures)
    context = [("decode file", str(source))]
    for key in ("model", "manifest", "backend", "date"):
        if settings.get(key):
            context.append((key, str(settings[key])))
    decoding = settings.get("decoding") or {}
    for key in ("method", "lm", "lm_weight", "word_score", "vad"):  # the rest folds away below
        if key in decoding:
            context.append((f"decoding.{key}", json.dumps(decoding[key])))
    if not settings:
        context.append(("settings", f"not recorded ({settings_path(source).name} not found beside the decode file)"))
    context.append(("report written", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")))
    rows += "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in context)
    folded = "".join(
        f"<tr><th>decoding.{html.escape(k)}</th><td>{html.escape(json.dumps(v))}</td></tr>"
        for k, v in sorted(decoding.items())
    )
    if folded:
        folded = f"<details><summary>all decoding settings</summary><table>{folded}</table></details>"
    return f"<table>{rows}</table>{folded}"


def build_report(
    utterances: list[DecodedUtterance],
    source: Path,
    settings: dict | None = None,
    train_series: dict | None = None,
    options: ReportOptions = ReportOptions(),
) -> str:
    """The whole page as a string."""
    scored = score(utterances)
    settings = settings or {}
    characters = options.characters == "always" or (options.characters == "auto" and scored.rates.wer >= 0.5)
    plots = [duration_plot(utterances, scored), speaker_plot(utterances, scored), length_plot(scored)]
    audio = AudioBudget(options.audio_cap_mb) if options.audio else None
    order = sorted(range(len(utterances)), key=lambda i: (-scored.wer(i), -scored.utterance_errors[i], i))
    worst = order[: options.worst]
    rest = sorted(set(range(len(utterances))) - set(worst))
    sample = sorted(random.Random(options.seed).sample(rest, min(options.sample, len(rest))))
    title = f"ASR report: {source.name}"
    body = [
        f"<h1>{html.escape(title)}</h1>",
        "<h2>Summary</h2>",
        summary_html(scored.rates, settings, source),
        "<h2>Plots</h2><div class='plots'>",
        *[f'<img alt="plot" src="{uri}">' for uri in plots if uri],
        "</div>",
    ]
    if train_series:
        body += [
            "<h2>Training</h2><div class='plots'>",
            f'<img alt="training curves" src="{training_plot(train_series)}">',
            "</div>",
        ]
    body += [
        "<h2>Most frequent errors</h2>",
        frequent_errors_html(scored, options.top_errors),
        "<h2>Worst utterances</h2>",
        '<p class="key">Reference above hypothesis: <span class="S"><span>substitution</span></span>'
        '<span class="D"><span class="r">deletion</span></span><span class="I"><span class="h">insertion</span></span>'
        + (
            " &middot; with the character alignment, as the WER is high"
            if characters and options.characters == "auto"
            else ""
        )
        + "</p>",
        *[utterance_html(i, utterances[i], scored, characters, audio) for i in worst],
        f"<h2>A random sample of the other utterances ({len(sample)})</h2>",
        *[utterance_html(i, utterances[i], scored, characters, audio) for i in sample],
    ]
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def write_report(
    decode_path: str | Path,
    output: str | Path,
    train_log: str | Path | None = None,
    options: ReportOptions = ReportOptions(),
) -> Path:
    """Read ``decode_path`` (and its settings and ``train_log`` when given), write the page to ``output``."""
    decode_path = Path(decode_path)
    utterances = read_decode_file(decode_path)
    settings = read_settings(settings_path(decode_path)) if settings_path(decode_path).is_file() else {}
    series = read_train_log(train_log) if train_log else None
    page = build_report(utterances, decode_path, settings, series, options)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(output.name + ".tmp")
    temporary.write_text(page, encoding="utf-8")
    temporary.replace(output)
    return output
