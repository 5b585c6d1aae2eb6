"""Shared fixtures: the real datasets unpacked by ../shared/datasets/prepare.py, tiny tensors."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """TRAINLAB_DATA (set by .ci/run) or ~/.cache/trainlab-data, unpacked from ../shared/datasets
    if missing. Fails if TRAINLAB_DATA is set but empty; skips only where ../shared is absent."""
    env = os.environ.get("TRAINLAB_DATA")
    path = Path(env or Path.home() / ".cache" / "trainlab-data")
    prepare = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "prepare.py"
    if not (path / "MNIST" / "raw").is_dir() and prepare.exists():
        subprocess.run([sys.executable, str(prepare), str(path)], check=True)  # cheap when already there
    if not (path / "MNIST" / "raw").is_dir():
        if env:
            pytest.fail(f"TRAINLAB_DATA={env} holds no prepared datasets")
        pytest.skip("real datasets not prepared (python ../shared/datasets/prepare.py DIR; TRAINLAB_DATA=DIR)")
    return path


@pytest.fixture
def runs(tmp_path) -> Path:
    return tmp_path / "runs"


@pytest.fixture
def blobs():
    """A small separable 3-class problem: (x, y) train and validation tensors."""
    g = torch.Generator().manual_seed(0)
    centers = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.5]])
    y = torch.arange(3).repeat(100)
    x = centers[y] + 0.5 * torch.randn(len(y), 2, generator=g)
    return (x[:240], y[:240]), (x[240:], y[240:])


# Run options that keep a test run small: no TensorBoard events, no end-of-run plots.
QUIET = dict(tensorboard=False, plots=False)


@pytest.fixture
def quiet(runs) -> dict:
    """Config overrides for a quiet, small test run writing under the test's own runs folder."""
    return dict(QUIET, out_dir=str(runs))


def tiny_run(out: Path, seed: int = 0, **options) -> Path:
    """A finished one-epoch run of a 2-feature, 3-class linear model (64 samples, 2 steps): a real
    checkpoint to validate, damage or resume."""
    import trainlab

    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(64, 2, generator=g), torch.randint(0, 3, (64,), generator=g)
    return trainlab.fit(torch.nn.Linear(2, 3), (x, y), (x, y), epochs=1, batch_size=32, out_dir=str(out),
                        **QUIET, **options).run_dir


def weights(run_dir: Path, which: str = "last", entry: str = "model") -> dict:
    """A run's checkpointed model state_dict (entry "ema": its averaged weights)."""
    from trainlab import checkpoint

    return checkpoint.load(Path(run_dir) / "checkpoints" / f"{which}.pt")[entry]


def assert_bitwise_equal(a: dict, b: dict) -> None:
    """Two state_dicts with the same keys and bitwise-equal tensors."""
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def eval_reproduces_last_row(run_dir: Path, capsys) -> dict:
    """`trainlab eval RUN --json` of a run that validated on its test split: its loss and accuracy
    equal those of the run's last metrics row (checked); returns the result."""
    import json

    from trainlab.cli import main
    from trainlab.runs import read_metrics

    row = read_metrics(run_dir)[-1]
    capsys.readouterr()
    assert main(["eval", str(run_dir), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["loss"] == pytest.approx(float(row["val_loss"]), rel=1e-5)
    assert result["accuracy"] == pytest.approx(float(row["val_acc"]), rel=1e-5)
    return result


# ---------------------------------------------------------------- small finished runs of each kind


def _image_folder(root: Path) -> Path:
    """3 classes x 12 PNGs of 16x16: red-ish, green-ish and blue-ish noise, easy to tell apart."""
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    for k, name in enumerate(["red circle", "green square", "blue stripes"]):
        (root / name).mkdir(parents=True)
        for i in range(12):
            pixels = (torch.rand(16, 16, 3, generator=g) * 120).to(torch.uint8)
            pixels[..., k] += 120
            Image.fromarray(pixels.numpy()).save(root / name / f"{i}.png")
    return root


def _table_file(path: Path) -> Path:
    """60 rows: a numeric column, a text column and a class that depends on both."""
    g = torch.Generator().manual_seed(1)
    rows = ["size,colour,kind"]
    for i in range(60):
        size, colour = float(torch.rand(1, generator=g)) * 10, ["red", "blue"][i % 2]
        rows.append(f"{size:.2f},{colour},{'big' if size > 5 else 'small'}")
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory) -> dict[str, Path]:
    """Finished tiny runs under one folder: "images" (folder-cnn on PNGs), "table" (CSV),
    "tensors" (trainlab.fit on tensors), "stopped" (max_steps) and "diverged" (lr too high)."""
    import trainlab
    from trainlab.errors import Diverged

    root = tmp_path_factory.mktemp("report-runs")
    out = str(root / "runs")
    quick = dict(out_dir=out, threads=1, tensorboard=False, plots=False, cache=False)
    folder = _image_folder(root / "pictures")
    trainlab.train("image-folder", data_path=str(folder), image_size=16, transforms=[], epochs=2, batch_size=8,
                   lr=0.05, name="images", **quick)
    trainlab.train("table", data_path=str(_table_file(root / "sizes.csv")), target="kind", epochs=2,
                   batch_size=16, name="table", **quick)
    x = torch.randn(120, 2, generator=torch.Generator().manual_seed(2))
    y = (x[:, 0] > 0).long()
    tensors = dict(epochs=2, lr=0.1, out_dir=out, threads=1, tensorboard=False, plots=False)
    trainlab.fit(torch.nn.Linear(2, 2), (x[:96], y[:96]), (x[96:], y[96:]), name="tensors", **tensors)
    trainlab.fit(torch.nn.Linear(2, 2), (x[:96], y[:96]), (x[96:], y[96:]), name="stopped", max_steps=3,
                 batch_size=16, **tensors)
    with pytest.raises(Diverged):
        trainlab.fit(torch.nn.Linear(2, 2), (x[:96], torch.full((96, 2), float("nan"))), name="diverged",
                     loss="mse", **tensors)
    return {name: root / "runs" / name for name in ("images", "table", "tensors", "stopped", "diverged")}


# ---------------------------------------------------------------- headless Chromium over the DevTools protocol


class Browser:
    """Headless Chromium driven over the Chrome DevTools protocol (a websocket): load a page, read
    console errors and uncaught exceptions as they happen, evaluate JavaScript, take a screenshot."""

    def __init__(self, binary: str, profile: Path):
        import websocket

        self.log = (profile.parent / "chromium.log").open("w")  # its stderr: dbus and GPU chatter
        self.process = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             "--remote-debugging-port=0", "--remote-allow-origins=*", f"--user-data-dir={profile}",
             "--window-size=1400,1000", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=self.log)
        port = self._port(profile / "DevToolsActivePort")
        import json
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            page = next(t for t in json.load(r) if t["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30)
        self.next_id, self.events = 0, []
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")

    def _port(self, path: Path, timeout: float = 30.0) -> int:
        """Chromium writes the port it picked (port 0: any free one) to DevToolsActivePort."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if path.exists() and path.read_text().strip():
                return int(path.read_text().split()[0])
            if self.process.poll() is not None:
                pytest.fail(f"chromium exited with {self.process.returncode} before opening DevTools")
            time.sleep(0.05)
        pytest.fail("chromium did not open its DevTools port within 30 s")

    def send(self, method: str, **params) -> dict:
        import json

        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, event: str) -> None:
        import json

        while not any(e.get("method") == event for e in self.events):
            self.events.append(json.loads(self.ws.recv()))

    def load(self, url: str) -> None:
        self.events.clear()
        self.send("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and browser-side errors (failed loads, CSP) so far."""
        out = []
        for e in self.events:
            method, params = e.get("method"), e.get("params", {})
            if method == "Runtime.exceptionThrown":
                out.append(params["exceptionDetails"].get("text", "exception"))
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                out.append(" ".join(str(a.get("value", a.get("description"))) for a in params.get("args", [])))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                out.append(params["entry"].get("text", ""))
        return out

    def screenshot(self, width: int = 1400) -> bytes:
        import base64

        self.send("Emulation.clearDeviceMetricsOverride")  # measure the page at the window's own size
        height = int(self.evaluate("document.documentElement.scrollHeight"))
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=min(height, 8000), deviceScaleFactor=1,
                  mobile=False)
        return base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"])

    def close(self) -> None:
        self.ws.close()
        self.process.terminate()
        self.process.wait(timeout=10)
        self.log.close()


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    """Headless Chromium (Debian's `chromium`; .ci/run installs it); skipped where there is none."""
    import shutil

    binary = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                   if shutil.which(n)), None)
    if binary is None:
        pytest.skip("no chromium on PATH: install Debian's chromium (apt-get install chromium; .ci/run does "
                    "this as root) to test the HTML pages in a real browser")
    pytest.importorskip("websocket", reason="websocket-client is missing: pip install -e '.[dev]'")
    b = Browser(binary, tmp_path_factory.mktemp("chromium") / "profile")
    yield b
    b.close()
