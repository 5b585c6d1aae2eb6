import os
import pytest

from trainlab.config import Config, convert, load_recipe, make_config, parse_overrides, recipe_names
from trainlab.errors import UserError


def test_overrides_are_converted_to_field_types():
    cfg = make_config("mnist-cnn", parse_overrides(["lr=1e-3", "epochs=3", "nesterov=true", "milestones=[2,4]",
                                                    "mean=0.5", "name=x"]))
    assert cfg.lr == 0.001 and cfg.epochs == 3 and cfg.nesterov is True
    assert cfg.milestones == [2, 4] and cfg.mean == [0.5] and cfg.name == "x"
    assert cfg.model == "mnist-cnn" and cfg.momentum == 0.5  # from the recipe


def test_unknown_key_names_it_and_suggests():
    with pytest.raises(UserError, match=r"unknown config key 'lr_rate'.*did you mean 'lr'"):
        make_config("mnist-cnn", {"lr_rate": "0.1"})


@pytest.mark.parametrize("key,value,match", [
    ("epochs", "three", r"bad value 'three' for 'epochs': expected int"),
    ("optimizer", "rmsprop", r"allowed values are sgd, adam, adamw"),
    ("batch_size", "0", r"must be at least 1"),
    ("nesterov", "maybe", r"expected bool"),
])
def test_bad_values(key, value, match):
    with pytest.raises(UserError, match=match):
        convert(key, value)


def test_recipe_file_lists_only_overrides(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("model: mnist-mlp\nlr: 0.05\n")
    cfg = make_config(str(f), {"epochs": "2"})
    assert (cfg.recipe, cfg.model, cfg.lr, cfg.epochs) == ("mine", "mnist-mlp", 0.05, 2)
    assert cfg.batch_size == Config().batch_size


def test_unknown_recipe_and_bad_yaml(tmp_path):
    with pytest.raises(UserError, match="unknown recipe 'nope'; available: .*mnist-cnn"):
        load_recipe("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("lr: [1, 2\n")
    with pytest.raises(UserError, match="cannot parse recipe"):
        load_recipe(str(bad))


def test_every_builtin_recipe_is_valid():
    for name in recipe_names():
        make_config(name)
    assert {"mnist-cnn", "mnist-mlp", "diabetes"} <= set(recipe_names())


def test_override_needs_equals():
    with pytest.raises(UserError, match="expected key=value"):
        parse_overrides(["lr"])


def test_a_folder_named_like_a_recipe_does_not_shadow_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.mkdir("mnist-mlp")
    assert make_config("mnist-mlp").model == "mnist-mlp"


@pytest.mark.parametrize("alias,key", [("learning_rate", "lr"), ("num_epochs", "epochs"), ("bs", "batch_size"),
                                       ("batchsize", "batch_size"), ("wd", "weight_decay"), ("optim", "optimizer")])
def test_common_aliases_suggest_the_key(alias, key):
    with pytest.raises(UserError, match=rf"unknown config key '{alias}' \(did you mean '{key}'\?\)"):
        make_config(None, {alias: "1"})


def test_unknown_recipe_suggests_the_closest():
    with pytest.raises(UserError, match=r"unknown recipe 'mnist_cnn' \(did you mean 'mnist-cnn'\?\)"):
        load_recipe("mnist_cnn")


def test_every_key_has_its_help_in_the_dataclass():
    import dataclasses

    from trainlab.confighelp import key_table

    table = key_table()
    for f in dataclasses.fields(Config):
        assert f.metadata.get("help"), f"{f.name} has no help text"
        assert f"  {f.name} " in table


def test_table_column_overrides_are_lists_of_names():
    from trainlab.config import convert

    assert convert("drop", "[Fare, Cabin]") == ["Fare", "Cabin"] and convert("drop", "Ticket") == ["Ticket"]
    assert make_config("table", {"numeric": "[Age]", "categorical": "[Pclass]"}).numeric == ["Age"]


@pytest.mark.parametrize("key,value", [
    ("lr", "nan"), ("lr", "inf"), ("lr", ".inf"), ("lr", "1e999"), ("momentum", "nan"), ("weight_decay", "nan"),
    ("max_lr", "-inf"), ("gamma", "nan"), ("label_smoothing", "nan"), ("val_fraction", "nan"), ("test_fraction", "nan"),
    ("mean", "[nan]"), ("std", "[nan]"), ("std", "[0.5, inf]"), ("betas", "[0.9, nan]"),
])
def test_non_finite_numbers_are_a_config_error_naming_the_key(key, value):
    with pytest.raises(UserError, match=rf"bad value .* for '{key}': must be a finite number"):
        convert(key, value)


def test_non_finite_lr_fails_before_training(tmp_path, capsys):
    from trainlab.cli import main

    assert main(["train", "mnist-mlp", "lr=nan", f"out_dir={tmp_path}"]) == 2  # not exit 3 at step 1
    assert "bad value nan for 'lr': must be a finite number" in capsys.readouterr().err
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


def test_threads_and_seed_have_safe_bounds():
    assert convert("threads", "1024") == 1024
    with pytest.raises(UserError, match=r"bad value 100000 for 'threads': at most 1024"):
        convert("threads", "100000")  # torch.set_num_threads(100000) segfaults
    assert convert("seed", str(2**63 - 1)) == 2**63 - 1
    for seed in ("99999999999999999999", str(2**63)):
        with pytest.raises(UserError, match=r"for 'seed': at most 2\*\*63 - 1"):
            convert("seed", seed)
    with pytest.raises(UserError, match=r"for 'seed': must be 0 or more"):
        convert("seed", "-1")


@pytest.mark.parametrize("value", ["../../escape", "/abs/path", ".", "..", "a/b"])
def test_run_name_must_be_a_plain_folder_name(value):
    with pytest.raises(UserError, match=r"name=.*: must be a plain folder name"):
        convert("name", value)
    assert convert("name", "") == "" and convert("name", "my-run_2") == "my-run_2"


def test_odd_keys_and_values_are_user_errors():
    with pytest.raises(UserError, match="config keys must be names"):
        convert(1, 2)
    with pytest.raises(UserError, match=r"bad value '\[1, 2' for 'milestones'"):
        convert("milestones", "[1, 2")
    with pytest.raises(UserError, match=r"for 'lr': expected float"):
        convert("lr", 10**400)
    with pytest.raises(UserError, match=r"'test_fraction': must be between 0 and 1"):
        convert("test_fraction", "1")
    with pytest.raises(UserError, match=r"'val_fraction': must be 0 \(validate on the test split\) or a share below 1"):
        convert("val_fraction", "1")
    assert convert("val_fraction", "0") == 0.0
