"""The README's commands and code are the ones CI runs and that work."""

from __future__ import annotations

import pathlib
import re

REPO = pathlib.Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text("utf-8")


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_readme_starts_with_install_run_and_test_commands():
    bash = code_blocks("bash")
    install_and_run, test = bash[0].strip(), bash[1].strip()
    assert README.index(install_and_run) < README.index("## ")
    assert "pip install '.[test]'" in install_and_run
    assert "newswash run --input 'samples/*'" in install_and_run
    assert test == ".venv/bin/python -m pytest"


def test_ci_installs_and_tests_exactly_as_the_readme_says():
    ci = (REPO / ".ci" / "run").read_text("utf-8")
    install_and_run, test = (block.strip() for block in code_blocks("bash")[:2])
    install = install_and_run.split(" && .venv/bin/newswash")[0]
    assert install in ci.splitlines()
    assert test in ci


def test_readme_python_example_runs():
    for block in code_blocks("python"):
        exec(compile(block, "README.md", "exec"), {})  # pylint: disable=exec-used


def test_readme_help_block_is_the_real_help(monkeypatch, capsys):
    # The "Options" section shows `newswash run --help` verbatim (at 100 columns).
    import pytest

    from pipeline.cli import main

    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    shown = README.split("`newswash run --help`:\n\n```text\n", 1)[1].split("```", 1)[0]
    assert shown == capsys.readouterr().out
