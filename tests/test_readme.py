"""The README's Python snippet runs as written."""

import re

import pytest
from conftest import REPO_ROOT

README = REPO_ROOT / "README.md"


def python_blocks(text):
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.skipif(not README.is_file(), reason="README.md is not here")
def test_readme_python_snippet_runs(tmp_path, monkeypatch):
    blocks = python_blocks(README.read_text(encoding="utf-8"))
    assert blocks, "the README has no Python example"
    monkeypatch.chdir(tmp_path)
    namespace = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    best = namespace["best"]
    assert (tmp_path / "best.cif").is_file()
    assert (tmp_path / "best.fgr").is_file()
    assert namespace["recipe"].getNames() == ["scale", "zoom", "uiso"]
    assert best.rank == 1
    solved = namespace["solved"]
    assert solved[0].rank == 1 and solved[0].rw <= best.rw
