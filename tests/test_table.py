"""CSV tables: reading, header detection, preprocessing fitted on train only, errors that say where."""
import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from trainlab.data.table import fit_preprocessing, read_table, table_splits, transform
from trainlab.errors import UserError

MIXED = """age,colour,income,label
30,red,100,yes
40,blue,NA,no
,green,300,yes
50,?,400,no
60,red,500,yes
20,blue,600,no
"""


def write(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def numeric_rows(n: int, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    return "".join(f"{a:.4f},{b:.4f},{int(a > 0)}\n" for a, b in rng.normal(size=(n, 2)))


def test_header_text_numeric_and_missing_values(tmp_path):
    columns, rows = read_table(write(tmp_path, MIXED))
    assert columns == ["age", "colour", "income", "label"] and len(rows) == 6
    spec = fit_preprocessing(columns, rows)
    assert spec["target"] == "label" and spec["task"] == "classification" and spec["classes"] == ["no", "yes"]
    age, colour, income = spec["features"]
    assert age["kind"] == "numeric" and age["median"] == 40.0 and age["mean"] == 40.0
    assert colour == {"name": "colour", "kind": "category", "categories": ["blue", "green", "missing", "red"]}
    assert income["median"] == 400.0
    assert spec["feature_names"] == ["age", "colour=blue", "colour=green", "colour=missing", "colour=red", "income"]
    x, y = transform(spec, columns, rows)
    assert x.dtype == torch.float32 and x.shape == (6, 6) and y.tolist() == [1, 0, 1, 0, 1, 0]
    assert x[2, 0] == 0.0  # missing age → median 40 → (40 - mean 40) / std
    assert x[1, 5] == pytest.approx((400 - income["mean"]) / income["std"])
    assert x[3, 1:5].tolist() == [0, 0, 1, 0]  # "?" is the "missing" category
    assert torch.allclose(x[:, 0].mean(), torch.tensor(0.0), atol=1e-6)


def test_headerless_numeric_gz_and_header_override(tmp_path):
    text = numeric_rows(30)
    plain, packed = write(tmp_path, text), write(tmp_path, text, "t.csv.gz")
    columns, rows = read_table(packed)
    assert columns == ["c0", "c1", "c2"] and len(rows) == 30 and read_table(plain) == (columns, rows)
    spec = fit_preprocessing(columns, rows)
    assert spec["target"] == "c2" and spec["classes"] == ["0", "1"]
    assert fit_preprocessing(columns, rows, target="1")["target"] == "c1"  # a column index, for headerless files
    named, data = read_table(packed, header="yes")
    assert named == rows[0] and len(data) == 29
    with pytest.raises(UserError, match="header must be"):
        read_table(plain, header="maybe")


def test_header_detected_on_all_text_table(tmp_path):
    text = "colour,size,kind\nred,big,a\nblue,small,b\nred,small,a\n"
    assert read_table(write(tmp_path, text))[0] == ["colour", "size", "kind"]
    headerless = "red,big,a\nblue,small,b\nred,small,a\n"
    assert read_table(write(tmp_path, headerless))[0] == ["c0", "c1", "c2"]


def test_task_rule_and_override(tmp_path):
    columns = ["x", "y"]
    few_ints = [[str(i), str(v)] for i, v in enumerate([10, 2, 2, 10, 2])]
    spec = fit_preprocessing(columns, few_ints)
    assert spec["task"] == "classification" and spec["classes"] == ["2", "10"]  # numeric order, not "10" < "2"
    assert transform(spec, columns, [["0", "10.0"]])[1].tolist() == [1]  # "10.0" is class "10"
    assert fit_preprocessing(columns, few_ints, task="regression")["task"] == "regression"
    many_ints = [[str(i), str(i * 7)] for i in range(21)]
    assert fit_preprocessing(columns, many_ints)["task"] == "regression"
    with pytest.raises(UserError, match=r"target column 'y', data row 1: 'cat' is not a number"):
        fit_preprocessing(columns, [["0", "cat"], ["1", "dog"]], task="regression")
    with pytest.raises(UserError, match="task must be"):
        fit_preprocessing(columns, few_ints, task="clustering")


def test_regression_targets_are_standardised_on_train_rows(tmp_path):
    rows = "".join(f"{i},{i * 2.5 + 0.1:.2f}\n" for i in range(40))
    path = write(tmp_path, "x,price\n" + rows)
    s = table_splits(path, seed=3)
    spec = s.info["table"]
    assert spec["task"] == "regression" and s.classes == [] and spec["classes"] == []
    assert s.train.y.dtype == torch.float32 and len(s.train) == 32 and len(s.test) == 8
    mean, std = spec["target_scale"]
    y = s.train.y.double()
    assert y.mean().abs() < 1e-6 and y.std(unbiased=False) == pytest.approx(1, abs=1e-5)
    raw = {round(i * 2.5 + 0.1, 2) for i in range(40)}
    assert {round(v * std + mean, 2) for v in torch.cat([s.train.y, s.test.y]).tolist()} == raw
    assert spec["summary"].splitlines()[0] == ("t.csv: 40 rows, 1 numeric + 0 categorical features, "
                                               "target 'price' (regression)")
    assert "price   target    regression, standardised" in spec["summary"]


def test_unseen_category_is_all_zeros_and_prediction_matches_by_name(tmp_path):
    columns, rows = read_table(write(tmp_path, MIXED))
    spec = fit_preprocessing(columns, rows)
    new_columns = ["income", "colour", "age"]  # another order, no target column
    x, y = transform(spec, new_columns, [["200", "purple", "35"], ["NaN", "red", "?"]], with_target=False)
    assert y is None and x.shape == (2, 6)
    assert x[0, 1:5].tolist() == [0, 0, 0, 0] and x[1, 1:5].tolist() == [0, 0, 0, 1]
    assert x[1, 0] == pytest.approx((40 - spec["features"][0]["mean"]) / spec["features"][0]["std"])
    with pytest.raises(UserError, match="missing feature column 'colour'"):
        transform(spec, ["income", "age"], [["1", "2"]], with_target=False)
    with pytest.raises(UserError, match="missing target column 'label'"):
        transform(spec, new_columns, [["200", "red", "35"]])


def test_missing_target_name_lists_columns(tmp_path):
    path = write(tmp_path, MIXED)
    with pytest.raises(UserError, match=r"t\.csv: no target column 'price'; the columns are: age, colour, income, label"):
        table_splits(path, target="price")


def test_bad_cell_names_column_row_and_value(tmp_path):
    text = "a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(9)) + "9,oops,1\n"
    path = write(tmp_path, text)
    assert table_splits(path).info["table"]["features"][1]["kind"] == "category"  # 1 text cell in 10: mixed
    with pytest.raises(UserError, match=r"t\.csv: column 'b', line 11: 'oops' is not a number"):
        table_splits(path, numeric=["b"])
    columns, rows = read_table(path)
    with pytest.raises(UserError, match=r"column 'b', data row 10: 'oops' is not a number"):
        fit_preprocessing(columns, rows, numeric=["b"])
    spec = fit_preprocessing(columns, rows[:9])
    with pytest.raises(UserError, match=r"column 'b', data row 1: 'oops' is not a number"):
        transform(spec, columns, rows[9:])


def test_ragged_row_names_the_line(tmp_path):
    path = write(tmp_path, "a,b,y\n1,2,0\n3,4,1\n5,6\n")
    with pytest.raises(UserError, match=r"t\.csv: line 4 has 2 cells but the header has 3"):
        read_table(path)
    path.write_text("a,b,y\n1,2,0\n3,4,1,9\n")
    with pytest.raises(UserError, match=r"t\.csv: line 3 has 4 cells but the first row has 3"):
        read_table(path)


def test_unusable_columns_are_named(tmp_path):
    empty = write(tmp_path, "a,b,y\n1,,0\n2,NA,1\n3,?,0\n4,,1\n")
    assert "b       dropped   empty: every cell is missing" in fit_preprocessing(*read_table(empty))["summary"]
    with pytest.raises(UserError, match=r"column 'b' is empty"):
        table_splits(empty, numeric=["b"])
    no_label = write(tmp_path, "a,y\n1,0\n2,1\n3,\n4,1\n", "n.csv")
    with pytest.raises(UserError, match=r"n\.csv: target column 'y' has a missing value at line 4"):
        table_splits(no_label)
    with pytest.raises(UserError, match="missing data file"):
        read_table(tmp_path / "absent.csv")
    with pytest.raises(UserError, match="no rows"):
        read_table(write(tmp_path, "\n\n", "blank.csv"))


def test_constant_column_is_fine(tmp_path):
    columns, rows = ["k", "y"], [["5", "0"], ["5", "1"], ["5", "0"]]
    spec = fit_preprocessing(columns, rows)
    assert spec["features"][0]["std"] == 1.0
    assert transform(spec, columns, rows)[0].flatten().tolist() == [0.0, 0.0, 0.0]


def test_spec_survives_weights_only_checkpoint(tmp_path):
    s = table_splits(write(tmp_path, MIXED + MIXED.split("\n", 1)[1]), test_fraction=0.25)
    torch.save({"spec": s.info["table"]}, tmp_path / "ck.pt")
    loaded = torch.load(tmp_path / "ck.pt", weights_only=True)
    assert loaded["spec"] == s.info["table"]
    columns, rows = read_table(tmp_path / "t.csv")
    assert torch.equal(transform(loaded["spec"], columns, rows)[0], transform(s.info["table"], columns, rows)[0])


def test_statistics_come_from_train_rows_only(tmp_path):
    text = "a,y\n" + "".join(f"{v},{i % 2}\n" for i, v in enumerate([1, 2, 3, 4, 1000, 2000]))
    columns, rows = read_table(write(tmp_path, text))
    spec = fit_preprocessing(columns, rows[:4])
    a = spec["features"][0]
    assert a["mean"] == 2.5 and a["median"] == 2.5 and a["std"] == pytest.approx(np.std([1, 2, 3, 4]))
    x, _ = transform(spec, columns, rows[4:])
    assert x[:, 0].tolist() == pytest.approx([(1000 - 2.5) / a["std"], (2000 - 2.5) / a["std"]])


def test_table_splits_fit_on_train_split(tmp_path):
    values = np.arange(100.0) ** 2  # skewed, so train and all-row statistics differ
    text = "a,y\n" + "".join(f"{v},{i % 2}\n" for i, v in enumerate(values))
    s = table_splits(write(tmp_path, text), test_fraction=0.3, seed=1)
    a = s.info["table"]["features"][0]
    train_raw = s.train.x[:, 0] * a["std"] + a["mean"]
    assert a["mean"] == pytest.approx(train_raw.double().mean().item(), rel=1e-5)
    assert a["mean"] != pytest.approx(values.mean(), rel=1e-3)
    assert s.train.x[:, 0].mean().abs() < 1e-5 and s.test.x[:, 0].mean().abs() > 1e-3
    assert len(s.train) == 70 and len(s.test) == 30 and s.classes == ["0", "1"]


def test_diabetes_real_table(data_dir):
    path = data_dir / "diabetes.csv.gz"
    columns, rows = read_table(path)
    assert columns == [f"c{i}" for i in range(9)] and len(rows) == 759
    s = table_splits(path, test_fraction=0.2, seed=0)
    spec = s.info["table"]
    assert spec["task"] == "classification" and s.classes == ["0", "1"] and spec["target"] == "c8"
    assert s.train.x.shape[1] == 8 and len(s.train) + len(s.test) == 759
    assert s.train.y.dtype == torch.int64 and s.source == str(path)
    assert spec["summary"].splitlines()[0] == ("diabetes.csv.gz: 759 rows, 8 numeric + 0 categorical features, "
                                               "target 'c8' (classification, 2 classes)")
    assert spec["encoding"] == "utf-8" and spec["delimiter"] == ","


def houses(tmp_path: Path, n: int = 300) -> Path:
    """Prices around 1e5..1e6, linear in area plus a categorical and noise."""
    rng = np.random.default_rng(0)
    area = rng.uniform(40, 300, n)
    kind = rng.choice(["flat", "house"], n)
    price = 3000 * area + np.where(kind == "house", 50000, 0) + rng.normal(0, 1e4, n) + 1e5
    path = tmp_path / "houses.csv"
    path.write_text("area,kind,price\n" + "".join(f"{a:.1f},{k},{p:.0f}\n" for a, k, p in zip(area, kind, price)))
    return path


def test_regression_on_large_targets_learns_and_reports_in_price_units(tmp_path, capsys):
    from trainlab import api, load
    from trainlab.cli import main
    from trainlab.report import format_eval

    run = api.train("table", data_path=str(houses(tmp_path)), target="price", out_dir=str(tmp_path / "runs"),
                    epochs=10, threads=1, tensorboard=False, plots=False).run_dir
    assert "area    numeric" in capsys.readouterr().out  # the schema table is printed at train time
    result = api.evaluate_run(str(run))
    assert result["r2"] > 0.9 and 5e3 < result["rmse"] < 5e4 and result["mae"] < result["rmse"]
    assert "RMSE:" in format_eval(result) and "R²: 0.9" in format_eval(result)
    rows = tmp_path / "new.csv"
    rows.write_text("area,kind\n200,house\n1e308,flat\n100,flat\n")
    first, bad, third = load(run).predict([rows])
    assert first.value[0] == pytest.approx(3000 * 200 + 150000, rel=0.1)  # un-scaled: a price, not a z-score
    assert third.value[0] == pytest.approx(3000 * 100 + 100000, rel=0.15)
    assert "row 2: column 'area' is out of range" in bad.error and bad.value is None
    assert main(["predict", str(run), str(rows)]) == 1
    out = capsys.readouterr()
    assert "nan" not in out.out and "row 2" not in out.out  # stdout: the predictions only
    assert out.err.count("trainlab: error:") == 1 and "row 2: column 'area' is out of range" in out.err
