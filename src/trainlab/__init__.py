"""trainlab: the training routine of the PyTorch study notes as one command or one `fit()` call.

    import trainlab
    result = trainlab.fit(model, (x_train, y_train), (x_val, y_val), epochs=5, lr=0.01)

Names are imported lazily so that `import trainlab` (and `trainlab --help`) stays fast.
"""
from __future__ import annotations

__version__ = "0.1.0"

_EXPORTS = {
    "fit": "api", "FitResult": "results", "Config": "config", "make_config": "config",
    "train": "api", "resume": "api", "evaluate_run": "api", "TensorData": "data",
    "build_model": "registry", "register_model": "registry", "build_dataset": "data",
    "register_dataset": "data", "UserError": "errors", "load": "predict", "Predictor": "predict",
    "export": "exporter",  # not trainlab/export.py: importing it would shadow this function on the package
    "report_html": "html_report", "compare_runs": "compare", "list_runs": "runlist",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'trainlab' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
