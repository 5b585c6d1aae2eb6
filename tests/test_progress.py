"""The progress bar: drawn on a terminal only, never with quiet=true, cleared before an error."""
import io
import sys

from trainlab import progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_bar_only_on_a_terminal_and_never_when_quiet(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # a pipe, a log file, CI
    assert progress.make_bar(10, 0, "epoch 1/2").disable
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert not progress.make_bar(10, 0, "epoch 1/2").disable
    assert progress.make_bar(10, 0, "epoch 1/2", quiet=True).disable


def test_close_bars_leaves_the_cursor_at_the_start_of_a_clean_line(monkeypatch):
    monkeypatch.setattr(sys, "stderr", Terminal())
    bar = progress.make_bar(10, 2, "epoch 1/2")
    bar.update(3)
    progress.close_bars()
    written = sys.stderr.getvalue()
    assert "epoch 1/2" in written and written.endswith("\r")  # the bar's line blanked, cursor back at column 0
    assert written.rsplit("\r", 2)[-2].strip() == ""
