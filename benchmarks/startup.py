"""Startup time of the `trainlab` command: `trainlab --help` and `trainlab ls`.

    python benchmarks/startup.py [--runs 5]

Each command is run as `python -m trainlab ...` and, when the `trainlab` console script sits next
to the Python executable (an installed venv), as `trainlab ...` too: one warm-up run, then `--runs`
timed runs. Prints median and min wall time against the targets (--help 0.5 s, ls 1.0 s), then the
modules that `trainlab ls` spends more than 50 ms importing (`python -X importtime`), which shows
what still pulls in torch. Writes benchmarks/results/startup.json. Always exits 0: a missed target
is reported, not raised.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "startup.json"
TARGETS = {"--help": 0.5, "ls": 1.0}
HEAVY_MS = 50.0
TOP_IMPORTS = 8


def launchers() -> dict[str, list[str]]:
    """The ways to start trainlab: the module always, the console script when installed."""
    found = {"python -m trainlab": [sys.executable, "-m", "trainlab"]}
    script = Path(sys.executable).with_name("trainlab.exe" if os.name == "nt" else "trainlab")
    if script.is_file():
        found["trainlab"] = [str(script)]
    return found


def time_command(argv: list[str], runs: int) -> list[float]:
    """Wall seconds of `runs` runs of `argv`, after one untimed warm-up (disk cache, .pyc files)."""
    subprocess.run(argv, capture_output=True, check=True)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return times


def measure(runs: int) -> list[dict]:
    rows = []
    for launcher, prefix in launchers().items():
        for arg, target in TARGETS.items():
            times = time_command(prefix + [arg], runs)
            median = statistics.median(times)
            rows.append({"command": f"{launcher} {arg}", "median_s": median, "min_s": min(times),
                         "target_s": target, "pass": median <= target, "times_s": times})
    return rows


def heavy_imports(argv: list[str]) -> list[tuple[str, float]]:
    """(module, cumulative ms) of the imports slower than HEAVY_MS, slowest first, from the
    `import time: self [us] | cumulative | package` lines that -X importtime writes to stderr."""
    proc = subprocess.run([sys.executable, "-X", "importtime", *argv], capture_output=True, text=True)
    found = []
    for line in proc.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if not line.startswith("import time:") or len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        cumulative_ms = int(parts[1]) / 1000
        if cumulative_ms > HEAVY_MS:
            found.append((parts[2].strip(), cumulative_ms))
    return sorted(found, key=lambda item: -item[1])[:TOP_IMPORTS]


def print_table(rows: list[dict]) -> None:
    width = max(len(r["command"]) for r in rows)
    print(f"{'command':<{width}}  {'median s':>9}  {'min s':>7}  {'target s':>8}  result")
    for r in rows:
        verdict = "pass" if r["pass"] else "FAIL"
        print(f"{r['command']:<{width}}  {r['median_s']:>9.3f}  {r['min_s']:>7.3f}  {r['target_s']:>8.1f}  {verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(description="Time `trainlab --help` and `trainlab ls`.")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per command (default 5)")
    args = parser.parse_args()
    rows = measure(args.runs)
    print_table(rows)
    imports = heavy_imports(["-m", "trainlab", "ls"])
    print(f"\nimports of `trainlab ls` over {HEAVY_MS:.0f} ms (cumulative, top {TOP_IMPORTS}):")
    for module, ms in imports:
        print(f"  {ms:8.1f} ms  {module}")
    if not imports:
        print("  none")
    machine = {"processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
               "python": platform.python_version(), "platform": platform.platform()}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": machine, "runs": args.runs, "results": rows,
                                   "heavy_imports_ls": [{"module": m, "cumulative_ms": ms} for m, ms in imports]},
                                  indent=2) + "\n")
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
