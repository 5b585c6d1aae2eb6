"""trainlab report --html: the page's content for image, table and fit() runs, and the page in headless Chromium."""
import io
import re

from trainlab import checkpoint
from trainlab.cli import main
from trainlab.html_report import report_html


def _sections(html: str) -> dict[str, str]:
    """Section title -> its HTML."""
    return dict(re.findall(r"<section[^>]*><h2>(.*?)</h2>(.*?)</section>", html, re.S))


def test_image_run_report_has_every_part(trained_runs):
    path = report_html(trained_runs["images"])
    assert path == trained_runs["images"] / "report.html"
    html = path.read_text()
    assert "<title>trainlab report: images</title>" in html
    parts = _sections(html)
    assert list(parts) == ["Curves", "Metrics per epoch", "Evaluation", "Worst-predicted test examples", "Config",
                           "Timing and hardware", "Resume history"]
    assert parts["Curves"].count("data:image/svg+xml;base64,") == 3
    assert parts["Metrics per epoch"].count("<tr>") == 1 + 2  # header + 2 epochs
    for name in ("red circle", "green square", "blue stripes"):  # class names label the matrix and the table
        assert parts["Evaluation"].count(f">{name}<") == 3
    assert parts["Worst-predicted test examples"].count("data:image/png;base64,") == 6  # the whole test split
    assert "folder-cnn" in parts["Config"] and "image_size" in parts["Config"]
    assert ">device<" in parts["Timing and hardware"] and ">cpu<" in parts["Timing and hardware"]
    assert ">start<" in parts["Resume history"] and ">finished<" in parts["Resume history"]
    # self-contained: no script, every image inline
    assert "<script" not in html and re.findall(r'src="(?!data:)', html) == []


def test_table_run_report_shows_rows_with_original_values(trained_runs):
    parts = _sections(report_html(trained_runs["table"]).read_text())
    worst = parts["Worst-predicted test examples"]
    assert ">size<" in worst and ">colour<" in worst  # the table's columns, decoded from the features
    assert re.search(r">(red|blue)<", worst) and "data:image/png" not in worst
    assert worst.count("<tr>") == 1 + 12  # the whole 12-row test split


def test_fit_run_report_uses_the_checkpoint_metrics(trained_runs):
    parts = _sections(report_html(trained_runs["tensors"]).read_text())
    assert "stored in the checkpoint" in parts["Evaluation"]
    assert 'class="cm"' in parts["Evaluation"]  # confusion matrix from the stored evaluation
    stored = checkpoint.load(trained_runs["tensors"] / "checkpoints" / "last.pt")["metrics"]
    assert f"{100 * stored['accuracy']:.2f}%" in parts["Evaluation"]


def test_cli_report_html_and_a_folder_that_is_not_a_run(trained_runs, tmp_path, capsys):
    assert main(["report", str(trained_runs["table"]), "--html"]) == 0
    out = capsys.readouterr().out
    assert f"html: {trained_runs['table'] / 'report.html'}" in out and "accuracy:" in out
    assert (trained_runs["table"] / "plots" / "confusion.png").exists()
    assert main(["report", str(tmp_path), "--html"]) == 2
    err = capsys.readouterr().err
    assert err == f"trainlab: error: {tmp_path} is not a trainlab run folder (it has no config.yaml)\n"


def test_pages_in_headless_chromium(browser, trained_runs, tmp_path):
    """The report and the comparison in a real browser: images load, no console error, title and best
    accuracy in the DOM, a screenshot that is not blank."""
    from PIL import Image

    from trainlab.compare import load_runs, write_html
    from trainlab.runlist import read_run

    run = trained_runs["images"]
    pages = [report_html(run), write_html(load_runs([run, trained_runs["table"]]), tmp_path / "compare.html")]
    titles = ["trainlab report: images", "trainlab compare: images vs table"]
    best = f"{100 * read_run(run).best[0]:.2f}%"
    for page, title in zip(pages, titles):
        browser.load(page.as_uri())
        assert browser.evaluate("document.title") == title
        assert best in browser.evaluate("document.body.innerText")
        images = browser.evaluate("Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])")
        assert len(images) >= 4 and all(done and width > 0 for _, done, width in images), images
        shot = Image.open(io.BytesIO(browser.screenshot())).convert("RGB")
        shot.save(tmp_path / f"{page.stem}.png")  # kept for a person to look at when the test fails
        assert shot.width == 1400 and shot.height > 1000
        assert len(shot.getcolors(maxcolors=1 << 20)) > 50  # text, charts and pictures, not a blank page
        assert browser.errors() == []


def test_browser_check_catches_a_broken_page(browser, tmp_path):
    """The harness itself: a broken image and a console error are seen (else the test above proves nothing)."""
    page = tmp_path / "broken.html"
    page.write_text('<html><head><title>broken</title></head><body><img src="data:image/png;base64,AAAA" alt="x">'
                    '<script>console.error("boom")</script></body></html>')
    browser.load(page.as_uri())
    assert browser.evaluate("Array.from(document.images).map(i => i.naturalWidth)") == [0]
    assert any("boom" in e for e in browser.errors())


def test_report_of_a_run_that_diverged_before_any_checkpoint(trained_runs):
    parts = _sections(report_html(trained_runs["diverged"]).read_text())
    assert "no evaluation: no checkpoint found" in parts["Evaluation"]
    assert "no epoch finished yet" in parts["Metrics per epoch"]
    history = parts["Resume history"]
    assert ">diverged<" in history and "loss became nan at step 1" in history


def test_names_from_the_data_are_escaped(trained_runs):
    """Class names and config values come from folders and files: they must not become markup."""
    from trainlab.html_report import Evaluation, render
    from trainlab.runlist import read_run

    info = read_run(trained_runs["tensors"])
    info.config["data_path"] = "<script>alert(1)</script>"
    evaluation = Evaluation({"loss": 0.5, "accuracy": 0.5, "confusion": [[1, 1], [0, 2]], "classes": ["<b>a", "b&c"]})
    html = render(info, evaluation)
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;a" in html and "b&amp;c" in html and "<b>a" not in html
