"""Text that explains the config, generated from `Config` itself (field types, defaults, `help`):
the key table and recipe list of `trainlab train --help`, and the resolved config that
`trainlab config RECIPE key=value ...` prints as YAML.
"""
from __future__ import annotations

import dataclasses

import yaml

from .config import CHOICES, TYPES, Config, load_recipe, make_config, recipe_names, to_dict, type_name


def show_value(value: object) -> str:
    """A default as it would be typed after `key=`: true, 0.01, [0.9, 0.999], '' for empty."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ", ".join(show_value(v) for v in value) + "]"
    return str(value) if value != "" else "''"


def key_table() -> str:
    """One line per config key: name, type, default, meaning (and the allowed values)."""
    lines = ["config keys (key=value after the recipe; name, type, default, meaning):"]
    width = max(len(f.name) for f in dataclasses.fields(Config)) + 2
    for f in dataclasses.fields(Config):
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        meaning = f.metadata.get("help", "")
        if f.name in CHOICES:
            meaning += f" [{' | '.join(CHOICES[f.name])}]"
        lines.append(f"  {f.name:<{width}}{type_name(TYPES[f.name]):<12}{show_value(default):<15}{meaning}")
    return "\n".join(lines)


def recipe_table() -> str:
    lines = ["recipes (trainlab train RECIPE, or a YAML file that lists only what it overrides):"]
    for name in recipe_names():
        r = load_recipe(name)
        lines.append(f"  {name:<22}model={r.get('model', '-')} dataset={r.get('dataset', '-')}")
    return "\n".join(lines)


def train_epilog() -> str:
    return "\n\n".join([key_table(), recipe_table(),
                        "examples:\n  trainlab train mnist-mlp epochs=3 lr=0.05\n"
                        "  trainlab config mnist-mlp epochs=3      the resolved config, without training"])


def resolved_yaml(recipe: str | None, overrides: dict) -> str:
    """The config a `trainlab train RECIPE key=value ...` would run with, as YAML."""
    return yaml.safe_dump(to_dict(make_config(recipe, overrides)), sort_keys=False, default_flow_style=None)
