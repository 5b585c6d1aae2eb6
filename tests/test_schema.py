"""Column inference and CSV reading on generated tables: a Titanic-shaped passenger list, mixed,
identifier, free-text, date and boolean columns, Latin-1, semicolons, thousands separators."""
from pathlib import Path

import numpy as np
import pytest
import torch

from trainlab.data.csvfile import read_csv
from trainlab.data.schema import infer_column
from trainlab.data.table import fit_preprocessing, read_table, table_splits, transform
from trainlab.errors import UserError


def passengers(tmp_path: Path, n: int = 200) -> Path:
    """Kaggle-Titanic shape: PassengerId, Survived, Pclass, Name, Sex, Age (gaps), SibSp, Parch,
    Ticket (mixed "A/5 21171" / "113803"), Fare, Cabin (mostly empty), Embarked."""
    rng = np.random.default_rng(0)
    lines = ["PassengerId,Survived,Pclass,Name,Sex,Age,SibSp,Parch,Ticket,Fare,Cabin,Embarked"]
    for i in range(n):
        sex = "female" if rng.random() < 0.4 else "male"
        survived = int(rng.random() < (0.75 if sex == "female" else 0.2))
        age = "" if rng.random() < 0.2 else f"{rng.uniform(1, 70):.0f}"
        k = i - 1 if i % 10 == 1 else i  # some families share a ticket
        ticket = f"A/5 {21000 + k}" if k % 4 == 0 else f"{113000 + 7 * k}"
        cabin = f"C{i}" if i % 5 == 0 else ""
        embarked = "" if i in (61, 129) else "SCQ"[i % 3]
        lines.append(f'{i + 1},{survived},{1 + i % 3},"Surname{i}, Mr. First{i}",{sex},{age},{i % 3},{i % 2},'
                     f"{ticket},{rng.uniform(5, 80):.2f},{cabin},{embarked}")
    path = tmp_path / "titanic.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def kinds(spec: dict) -> dict[str, str]:
    return {e["column"]: e["kind"] for e in spec["schema"]}


def test_passenger_list_trains_with_a_sensible_schema(tmp_path):
    s = table_splits(passengers(tmp_path), target="Survived")
    spec = s.info["table"]
    assert kinds(spec) == {"PassengerId": "dropped", "Pclass": "numeric", "Name": "dropped", "Sex": "category",
                           "Age": "numeric", "SibSp": "numeric", "Parch": "numeric", "Ticket": "dropped",
                           "Fare": "numeric", "Cabin": "dropped", "Embarked": "category", "Survived": "target"}
    detail = {e["column"]: e["detail"] for e in spec["schema"]}
    assert "identifier" in detail["PassengerId"] and "a distinct value in each of its 200 rows" in detail["Name"]
    assert "very high cardinality" in detail["Ticket"] and "mixed text and numbers" in detail["Ticket"]
    assert s.train.x.shape[1] == 5 + 2 + 4  # 5 numbers, Sex 2, Embarked S/C/Q/missing
    assert torch.isfinite(s.train.x).all() and s.classes == ["0", "1"]
    summary = spec["summary"]
    assert summary.splitlines()[0] == ("titanic.csv: 200 rows, 5 numeric + 2 categorical features, 4 left out, "
                                       "target 'Survived' (classification, 2 classes)")
    assert "  column       kind      detail" in summary and "  Ticket       dropped   very high" in summary


def test_overrides_drop_categorical_numeric(tmp_path):
    path = passengers(tmp_path)
    spec = table_splits(path, target="Survived", drop=["Fare"], categorical=["Pclass", "Cabin"],
                        numeric=["Age"]).info["table"]
    k = kinds(spec)
    assert k["Fare"] == "dropped" and k["Pclass"] == "category" and k["Cabin"] == "category" and k["Age"] == "numeric"
    assert "Pclass=1" in spec["feature_names"] and "Cabin=C0" in spec["feature_names"]
    with pytest.raises(UserError, match=r"drop=\[\.\.\.\] names column 'Fares', which the table does not have"):
        table_splits(path, target="Survived", drop=["Fares"])
    with pytest.raises(UserError, match=r"column 'Age' is in both drop=\[\.\.\.\] and numeric"):
        table_splits(path, target="Survived", drop=["Age"], numeric=["Age"])
    with pytest.raises(UserError, match=r"names the target column 'Survived'"):
        table_splits(path, target="Survived", drop=["Survived"])
    with pytest.raises(UserError, match=r"titanic\.csv: column 'Ticket', line 2: 'A/5 21000' is not a number"):
        table_splits(path, target="Survived", numeric=["Ticket"])


def test_column_rules():
    assert infer_column("size", ["S", "M", "10", "12", "S", "M", "L", "10"] * 3)["kind"] == "category"
    assert "mixed" in infer_column("size", ["S", "10"] * 5)["detail"]
    assert infer_column("note", [f"free text number {i}" for i in range(30)])["kind"] == "dropped"
    assert infer_column("customer_id", [str(i) for i in range(30)])["kind"] == "dropped"
    assert infer_column("area", [str(i) for i in range(30)])["kind"] == "numeric"  # unique numbers, not an id
    assert infer_column("paid", [str(i) for i in range(30)])["kind"] == "numeric"  # "paid" is not "...Id"
    assert infer_column("ok", ["yes", "no", "Yes", "", "NO"])["kind"] == "boolean"
    odd = infer_column("price", [str(i) for i in range(40)] + ["unknown"])
    assert odd["kind"] == "numeric" and odd["missing"] == ["unknown"]
    assert infer_column("gone", ["", "NA", "?"])["detail"] == "empty: every cell is missing"
    date = infer_column("day", ["2021-03-04", "2021-12-31", ""])
    assert date["kind"] == "date" and date["format"] == "%Y-%m-%d"
    assert infer_column("day", ["31/12/2021", "01/02/2021"])["format"] == "%d/%m/%Y"  # day-first when needed


def test_dates_and_booleans_are_encoded(tmp_path):
    rows = [f"2021-{1 + i % 12:02d}-{1 + i % 28:02d},{'yes' if i % 3 else 'no'},{i % 2}" for i in range(30)]
    path = tmp_path / "d.csv"
    path.write_text("when,member,y\n" + "\n".join(rows) + "\n")
    columns, data = read_table(path)
    spec = fit_preprocessing(columns, data)
    assert spec["feature_names"] == ["when.year", "when.month", "when.day", "when.weekday", "member"]
    x, _ = transform(spec, columns, data)
    assert x[:, 4].tolist() == [float(i % 3 != 0) for i in range(30)]  # booleans stay 0/1
    assert x[:, 1].mean().abs() < 1e-5 and x[:, 0].abs().max() == 0  # month standardised; one year: constant
    month = spec["features"][0]["parts"][1]
    assert x[5, 1].item() == pytest.approx((6 - month["mean"]) / month["std"], rel=1e-5)
    with pytest.raises(UserError, match=r"column 'when', data row 1: 'soon' is not a date like %Y-%m-%d"):
        transform(spec, columns, [["soon", "yes", "1"]])
    with pytest.raises(UserError, match=r"column 'member', data row 1: 'maybe' is not one of"):
        transform(spec, columns, [["2021-01-01", "maybe", "1"]])


def test_latin1_semicolons_quotes_and_thousands(tmp_path):
    path = tmp_path / "l.csv"
    text = 'ville;prix;label\n"Orléans";"1,234";a\nCafé;"2,000.5";b\n"a;b";3;a\nCafé;4;b\n'
    path.write_bytes(text.encode("latin-1"))
    table = read_csv(path)
    assert table.encoding == "latin-1" and table.delimiter == ";" and table.columns == ["ville", "prix", "label"]
    assert [r[0] for r in table.rows] == ["Orléans", "Café", "a;b", "Café"]
    spec = table_splits(path, test_fraction=0.5).info["table"]
    assert spec["encoding"] == "latin-1" and spec["features"][1]["kind"] == "numeric"
    assert spec["summary"].startswith("l.csv (latin-1, delimiter ';'): 4 rows")
    euro = tmp_path / "e.csv"
    euro.write_text("taille;prix;label\n1,5;1.234,5;a\n-0,25;7;b\n2;3,0;a\n")
    table = read_csv(euro)
    assert table.decimal == "," and [r[:2] for r in table.rows] == [["1.5", "1234.5"], ["-0.25", "7"], ["2", "3.0"]]
    utf = tmp_path / "u.csv"
    utf.write_bytes(b"\xef\xbb\xbfa\tb\n1\t2\n3\t4\n")  # BOM and tabs
    assert read_csv(utf).columns == ["a", "b"] and read_csv(utf).encoding == "utf-8"


def test_extreme_magnitudes_standardise_and_bad_rows_are_named(tmp_path):
    rng = np.random.default_rng(1)
    big, tiny = rng.uniform(-1, 1, 60) * 1e308, rng.uniform(1, 2, 60) * 1e-300
    path = tmp_path / "x.csv"
    rows = [f"{float(b)!r},{float(t)!r},{i % 2}\n" for i, (b, t) in enumerate(zip(big, tiny))]
    path.write_text("big,tiny,y\n" + "".join(rows))
    s = table_splits(path)
    assert torch.isfinite(s.train.x).all() and torch.isfinite(s.test.x).all()
    assert s.train.x.abs().max() < 5 and s.train.x[:, 1].std() > 0.5
    spec = s.info["table"]
    with pytest.raises(UserError, match=r"data row 2: column 'tiny' is out of range after standardisation"):
        transform(spec, ["big", "tiny", "y"], [["0", "1.5e-300", "0"], ["0", "1e300", "0"]])
    with np.errstate(over="ignore", under="ignore"):
        assert not np.isfinite(np.abs(big).sum()) and np.std(tiny) == 0  # what plain statistics would give
