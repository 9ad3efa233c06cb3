"""``asr report``: a self-contained HTML page of a decode's errors, checked by parsing it (no browser)."""

import base64
import io
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from asr.report import ReportOptions, write_report
from tests.conftest import run_cli, write_wav


class Page(HTMLParser):
    """What the tests look at: cells with ids, images, audio players, text, and every start tag."""

    def __init__(self, text: str):
        super().__init__()
        self.cells: dict[str, str] = {}
        self.images: list[str] = []
        self.audio: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []
        self._cell: str | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "img":
            self.images.append(attrs["src"])
        if tag == "audio":
            self.audio.append(attrs["src"])
        self._cell = attrs.get("id") if tag == "td" else None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell:
            self.cells[self._cell] = data
            self._cell = None


def data_uri_bytes(uri: str, mime: str) -> bytes:
    prefix = f"data:{mime};base64,"
    assert uri.startswith(prefix)
    return base64.b64decode(uri[len(prefix) :], validate=True)


def write_decode(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_the_page_of_a_digits_model_has_asr_evaluates_counts_plots_and_audio(
    trained_digits_model, trained_digits_corpus, tmp_path
):
    decode = tmp_path / "decode.jsonl"
    page_path = tmp_path / "report.html"
    train_log = Path(trained_digits_model).parent / "train_log.csv"
    done = run_cli(
        "evaluate", str(trained_digits_model), str(trained_digits_corpus["test"]), "--json",
        "--output", str(decode), "--report", str(page_path), "--train-log", str(train_log),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rates = json.loads(done.stdout)
    page = Page(page_path.read_text(encoding="utf-8"))
    for key in ("substitutions", "deletions", "insertions", "reference_words", "utterances"):
        assert int(page.cells[key]) == rates[key], key
    assert page.cells["wer"] == f"{100 * rates['wer']:.2f}%"
    assert page.cells["cer"] == f"{100 * rates['cer']:.2f}%"
    text = " ".join(page.text)
    assert str(trained_digits_model) in text and "decoding.method" in text  # the recorded settings
    # duration buckets, speakers (the digits voices), lengths, training curves
    assert len(page.images) == 4
    for uri in page.images:
        image = Image.open(io.BytesIO(data_uri_bytes(uri, "image/png")))
        image.verify()
        assert image.size[0] > 200 and image.size[1] > 150
    assert (Path(trained_digits_model).parent / "dev_log.csv").read_text().count("\n") >= 2  # header + epochs
    assert not page.audio

    with_audio = tmp_path / "with_audio.html"
    done = run_cli("report", str(decode), "-o", str(with_audio), "--audio", "--worst", "3", "--sample", "2")
    assert done.returncode == 0, done.stderr
    players = Page(with_audio.read_text(encoding="utf-8")).audio
    assert len(players) == 5
    samples, rate = sf.read(io.BytesIO(data_uri_bytes(players[0], "audio/wav")))
    assert rate == 16000 and len(samples) > 8000


def test_text_that_needs_escaping_is_escaped_and_errors_are_counted(tmp_path):
    rows = [
        {
            "audio_filepath": "a.wav",
            "reference": 'the cat <b>said</b> "hi" & left',
            "hypothesis": "the bat said hi and",
        },
        {"audio_filepath": "b.wav", "reference": "the cat sat", "hypothesis": "a bat sat down"},
        {"audio_filepath": "c.wav", "reference": "one two three", "hypothesis": "one two three"},
    ]
    page_path = write_report(write_decode(tmp_path / "d.jsonl", rows), tmp_path / "r.html")
    source = page_path.read_text(encoding="utf-8")
    page = Page(source)
    assert "b" not in page.tags and "<b>" not in source
    assert "&lt;b&gt;said&lt;/b&gt;" in source and "&amp;" in source and "&quot;hi&quot;" in source
    text = " ".join(page.text)
    assert "<b>said</b>" in text  # the parser reads the escaped text back as written
    # substitution pairs, most frequent first; "the" -> "a" once; "down" inserted; "left" deleted
    tables = source[source.index("Substitutions") : source.index("Worst utterances")]
    assert tables.index("bat") < tables.index("down")
    assert '<td>cat</td><td>bat</td><td class="n">2</td>' in tables
    assert '<td>left</td><td class="n">1</td>' in tables and '<td>down</td><td class="n">1</td>' in tables
    # no durations and no speakers: only the length plot; the settings are said to be missing
    assert len(page.images) == 1 and "not recorded" in text
    # WER >= 50%: character alignments are shown; never: not
    assert "characters: CER" in source
    never = write_report(tmp_path / "d.jsonl", tmp_path / "n.html", options=ReportOptions(characters="never"))
    assert "characters: CER" not in never.read_text(encoding="utf-8")


def test_audio_past_the_cap_is_left_out_with_a_note(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for index in range(3):
        tone = 0.2 * np.sin(2 * np.pi * 440 * np.arange(16000 * 2) / 16000) + 0.01 * rng.standard_normal(32000)
        path = write_wav(tmp_path / f"clip{index}.wav", tone.astype(np.float32))  # 64 kB each
        rows.append({"audio_filepath": str(path), "duration": 2.0, "reference": "a b c", "hypothesis": "a b" * index})
    decode = write_decode(tmp_path / "d.jsonl", rows)
    options = ReportOptions(audio=True, audio_cap_mb=0.15)
    page_path = write_report(decode, tmp_path / "r.html", options=options)
    source = page_path.read_text(encoding="utf-8")
    assert len(Page(source).audio) == 2
    assert "would pass the page's 0.15 MB audio cap" in source


def test_an_empty_or_malformed_decode_file_gives_a_one_line_error(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    done = run_cli("report", str(empty), "-o", str(tmp_path / "r.html"))
    assert done.returncode == 2
    assert done.stderr.strip() == f"asr: error: {empty}: the decode file has no utterances"
    assert not (tmp_path / "r.html").exists()

    bad = write_decode(tmp_path / "bad.jsonl", [{"reference": "a"}])
    done = run_cli("report", str(bad), "-o", str(tmp_path / "r.html"))
    assert done.returncode == 2 and f"{bad}:1: not a decode line" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Chromium is not installed (apt-get install chromium)")
def test_the_page_renders_in_a_headless_browser(tmp_path):
    rows = [
        {"audio_filepath": f"84-1-{i}.wav", "duration": 1.0 + i, "reference": "one two", "hypothesis": "one"}
        for i in range(6)
    ]
    page = write_report(write_decode(tmp_path / "d.jsonl", rows), tmp_path / "r.html")
    shot = tmp_path / "shot.png"
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "report_screenshot.sh"
    done = subprocess.run(["bash", str(script), str(page), str(shot)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    image = Image.open(shot)
    pixels = np.asarray(image.convert("L"))
    assert image.size[0] >= 800 and pixels.std() > 5  # something was drawn, not a blank page


def test_a_settings_file_or_decode_file_that_is_not_what_it_should_be_gives_a_one_line_error(tmp_path, capsys):
    from asr.cli import main

    good = write_decode(tmp_path / "good.jsonl", [{"reference": "a b", "hypothesis": "a"}])
    for text, message in [("[1, 2]", "not a decode file's settings (a JSON object)"), ("{oops", "not JSON")]:
        (tmp_path / "good.settings.json").write_text(text)
        assert main(["report", str(good), "-o", str(tmp_path / "r.html")]) == 2
        error = capsys.readouterr().err
        assert error == f"asr: error: {tmp_path / 'good.settings.json'}: {message}" + (
            " (a decode file's settings)\n" if message == "not JSON" else "\n"
        )
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes('{"reference": "caf\xe9", "hypothesis": "cafe"}\n'.encode("latin-1"))
    assert main(["report", str(latin), "-o", str(tmp_path / "r.html")]) == 2
    assert capsys.readouterr().err == f"asr: error: {latin}: not UTF-8 text\n"
    assert not (tmp_path / "r.html").exists()
