"""The documentation's examples run as they are, and its tables say what the code does."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lmdbstore.transfer.records import KINDS

PAGES = Path(__file__).resolve().parent.parent / "docs" / "pages"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)

EXAMPLES = [
    pytest.param(code, id=f"{page.stem}-{number}")
    for page in sorted(PAGES.glob("*.md"))
    for number, code in enumerate(BLOCK.findall(page.read_text()), start=1)
]


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize("code", EXAMPLES)
def test_an_example_runs_as_pasted(
    code: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Each page's examples run in order in one directory, as a reader would run them (an
    example of PostgreSQL's gets the tests' server in ``LMDBSTORE_POSTGRES_URL``)."""
    env = dict(os.environ)
    if "LMDBSTORE_POSTGRES_URL" in code:
        env["LMDBSTORE_POSTGRES_URL"] = request.getfixturevalue("postgres_url")
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr


def test_the_export_format_page_lists_every_kind_and_field() -> None:
    page = (PAGES / "export-format.md").read_text()
    for kind, fields in KINDS.items():
        row = next(line for line in page.splitlines() if line.startswith(f"| `{kind}` |"))
        for name, type_name in fields.items():
            assert f"`{name}` ({type_name})" in row, (kind, name)
