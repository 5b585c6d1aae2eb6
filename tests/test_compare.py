"""trainlab compare: config differences only, final metrics, per-epoch values, the HTML page."""
import re

import pytest

import trainlab
from trainlab.cli import main
from trainlab.compare import config_diff, load_runs
from trainlab.errors import UserError


def test_config_diff_lists_only_the_keys_that_differ(trained_runs):
    diff = dict(config_diff(load_runs([trained_runs["images"], trained_runs["table"]])))
    assert diff["model"] == ["folder-cnn", "table-mlp"] and diff["lr"] == ["0.05", "0.003"]
    assert diff["target"] == ["none", "kind"]
    for same in ("epochs", "seed", "threads", "loss", "device", "name"):  # equal in both (name heads the columns)
        assert same not in diff
    assert config_diff(load_runs([trained_runs["tensors"], trained_runs["tensors"]])) == []


def test_compare_in_the_terminal_and_as_html(trained_runs, tmp_path, capsys):
    runs = [str(trained_runs[n]) for n in ("images", "table", "tensors")]
    assert main(["compare", *runs, "--html", str(tmp_path / "c.html")]) == 0
    out, html_line = capsys.readouterr().out.rstrip().rsplit("\n", 1)
    assert html_line == f"html: {tmp_path / 'c.html'}"
    config, final, epochs = out.split("\n\n")
    assert config.splitlines()[1].split() == ["key", "images", "table", "tensors"]
    assert {line.split()[0] for line in config.splitlines()[3:]} >= {"model", "lr", "dataset"}
    assert not re.search(r"^\s+(seed|threads|epochs)\s", config, re.M)
    assert "finished  2/2" in final and "100.00% (epoch 1)" in final
    assert epochs.splitlines()[0] == "validation accuracy per epoch:" and len(epochs.splitlines()) == 3 + 2
    html = (tmp_path / "c.html").read_text()
    assert "<title>trainlab compare: images vs table vs tensors</title>" in html
    assert html.count("data:image/svg+xml;base64,") == 4 and "<script" not in html
    diff_section = html.split("Config differences")[1].split("Final metrics")[0]
    assert ">lr<" in diff_section and ">seed<" not in diff_section and ">epochs<" not in diff_section


def test_compare_api_and_errors(trained_runs, tmp_path, capsys):
    result = trainlab.compare_runs([trained_runs["images"], trained_runs["stopped"]])
    assert result["runs"] == ["images", "stopped"] and result["html"] is None
    assert result["final"][1]["status"] == "stopped at step 3"
    with pytest.raises(UserError, match="at least two runs"):
        trainlab.compare_runs([trained_runs["images"]])
    assert main(["compare", str(trained_runs["images"]), str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == f"trainlab: error: {tmp_path} is not a trainlab run folder (it has no config.yaml)\n"
