"""`dltrain init`: a starter config that passes `show` as written and trains on shipped data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import run_cli
from dltrain.config.load import load_config
from dltrain.config.starter import TEMPLATES, write_starter
from dltrain.errors import DltrainError

MODELINE = "# yaml-language-server: $schema=dltrain.schema.json"


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_each_template_loads_as_written_and_is_commented(template: str, tmp_path: Path) -> None:
    written = write_starter(template, tmp_path / f"{template}.yaml")
    config = tmp_path / f"{template}.yaml"
    assert written[0] == config
    text = config.read_text()
    assert text.startswith(MODELINE + "\n")
    comments = [line for line in text.splitlines()
                if line.lstrip().startswith("#") or "  # " in line]
    assert len(comments) >= 8  # a starter explains itself
    loaded = load_config(config, [])
    assert loaded.config.name == template
    # the schema the modeline names is written beside the config, for the editor
    assert json.loads((tmp_path / "dltrain.schema.json").read_text())["title"] == "dltrain experiment config"


def test_tabular_starter_brings_its_csv_and_reads_it_relative_to_itself(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    written = write_starter("tabular", tmp_path / "sub" / "pima.yaml")
    csv = tmp_path / "sub" / "pima_diabetes.csv"
    assert csv in written and csv.read_text().startswith("pregnant,glucose")
    config = load_config(tmp_path / "sub" / "pima.yaml", []).config
    assert config.dataset.path == csv


def test_refuses_to_overwrite_a_config(tmp_path: Path) -> None:
    target = tmp_path / "mine.yaml"
    target.write_text("name: mine\n")
    with pytest.raises(DltrainError, match=r"mine.yaml already exists; dltrain init never "
                                           r"overwrites a file\. Choose another PATH"):
        write_starter("image", target)
    assert target.read_text() == "name: mine\n"


def test_refuses_a_different_file_in_place_of_the_sample_data(tmp_path: Path) -> None:
    (tmp_path / "pima_diabetes.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DltrainError, match="pima_diabetes.csv already exists and is not "
                                           "dltrain's sample data"):
        write_starter("tabular", tmp_path / "t.yaml")
    assert not (tmp_path / "t.yaml").exists()  # nothing half-written


def test_keeps_an_identical_sample_file_and_an_existing_schema(tmp_path: Path) -> None:
    write_starter("tabular", tmp_path / "a.yaml")
    (tmp_path / "dltrain.schema.json").write_text("{}")
    written = write_starter("tabular", tmp_path / "b.yaml")
    assert written == [tmp_path / "b.yaml"]
    assert (tmp_path / "dltrain.schema.json").read_text() == "{}"


def test_a_missing_folder_is_an_error_not_a_new_tree(tmp_path: Path) -> None:
    with pytest.raises(DltrainError, match=r"no such folder: .*typo.*Create it first"):
        write_starter("image", tmp_path / "typo" / "x.yaml")


def test_cli_init_then_show(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "init", "tabular")
    assert code == 0, err
    assert "wrote tabular.yaml" in out and "dltrain fit tabular.yaml" in out
    code, out, err = run_cli(capsys, "show", "tabular.yaml")
    assert code == 0, err
    assert "ok: tabular.yaml" in out


def test_cli_init_unknown_template(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "init", "images", str(tmp_path / "x.yaml"))
    assert code == 2 and "'images' is not one of" in err


def test_cli_init_refusal_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x.yaml").write_text("")
    code, _, err = run_cli(capsys, "init", "image", str(tmp_path / "x.yaml"))
    assert code == 2 and "already exists" in err


@pytest.mark.slow
@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_each_template_smoke_fits(template: str, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / f"{template}.yaml"
    code, _, err = run_cli(capsys, "init", template, str(config))
    assert code == 0, err
    code, out, err = run_cli(capsys, "fit", str(config), "--smoke", "--json",
                             "--run-dir", str(tmp_path / "run"))
    assert code == 0, err
    metrics = json.loads(out)
    assert metrics["epochs_run"] == 1
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["name"] == template


def test_regression_starter_is_a_regression_on_its_csv(tmp_path: Path) -> None:
    written = write_starter("regression", tmp_path / "r.yaml")
    assert tmp_path / "auto_mpg.csv" in written
    config = load_config(tmp_path / "r.yaml", []).config
    assert config.is_regression and config.dataset.path == tmp_path / "auto_mpg.csv"


def dangling_link(folder: Path) -> Path:
    (folder / "mine.yaml").symlink_to(folder / "nowhere.yaml")
    return folder / "mine.yaml"


@pytest.mark.parametrize(("template", "target", "expected"), [
    ("image", lambda folder: folder / "dltrain.schema.json", "dltrain.schema.json is the name"),
    ("tabular", lambda folder: folder / "pima_diabetes.csv", "pima_diabetes.csv is the name"),
    ("regression", lambda folder: folder / "auto_mpg.csv", "auto_mpg.csv is the name"),
    ("tabular", dangling_link, "mine.yaml already exists"),
    ("regression", dangling_link, "mine.yaml already exists"),
], ids=["schema-name", "csv-name", "regression-csv-name", "link-tabular", "link-regression"])
def test_a_refusal_writes_nothing_not_even_the_companion_files(
        tmp_path: Path, template: str, target: object, expected: str) -> None:
    path = target(tmp_path)  # type: ignore[operator]
    before = sorted(tmp_path.iterdir())
    with pytest.raises(DltrainError, match=expected):
        write_starter(template, path)
    assert sorted(tmp_path.iterdir()) == before  # no schema, no CSV left behind
    assert path.is_symlink() or not path.exists()


@pytest.mark.parametrize("name", ["dltrain.schema.json", "pima_diabetes.csv"])
def test_init_refuses_a_companions_name_for_the_config_and_writes_nothing(
        tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "init", "tabular", name)
    assert code == 2 and f"{name} is the name" in " ".join(err.split()), err
    assert list(tmp_path.iterdir()) == [] and out == ""


def test_a_dangling_link_in_place_of_a_companion_is_not_written_through(tmp_path: Path) -> None:
    (tmp_path / "dltrain.schema.json").symlink_to(tmp_path / "outside" / "x.json")
    (tmp_path / "outside").mkdir()
    with pytest.raises(DltrainError, match="dltrain.schema.json is a link to nothing"):
        write_starter("image", tmp_path / "image.yaml")
    assert list((tmp_path / "outside").iterdir()) == [] and not (tmp_path / "image.yaml").exists()


def test_cli_init_with_a_path_alone_writes_the_default_template(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "init", "mine.yaml")
    assert code == 0, err
    assert "wrote mine.yaml" in out and "dltrain fit mine.yaml" in out
    assert load_config(tmp_path / "mine.yaml", []).config.name == "image"
    # the path first, then the template, is read the same way round
    code, out, err = run_cli(capsys, "init", "sub.yml", "tabular")
    assert code == 0, err
    assert load_config(tmp_path / "sub.yml", []).config.name == "tabular"


def test_cli_init_a_name_that_is_neither_template_nor_yaml_path_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "init", "tabluar")
    assert code == 2 and "'tabluar' is not one of" in err and "Did you mean 'tabular'?" in err
    assert list(tmp_path.iterdir()) == []


def test_cli_init_with_two_paths_asks_for_one_path_and_one_template(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "init", str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"))
    assert code == 2 and out == ""
    assert "two config paths" in " ".join(err.split()) and "nor a config PATH" not in err
    assert list(tmp_path.iterdir()) == []
