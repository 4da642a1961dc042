"""The mathematics travels with the code: every "docs/SPEC.md §N" reference names a section there."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_every_spec_reference_names_an_existing_section():
    sections = {int(n) for n in re.findall(r"^## (\d+)\. ", (REPO / "docs" / "SPEC.md").read_text(), re.M)}
    assert sections == set(range(1, max(sections) + 1)) and len(sections) >= 10  # numbered in order
    referenced = set()
    for path in [*REPO.glob("factcli/**/*.py"), *REPO.glob("conf/**/*.yaml")]:
        for refs in re.findall(r"docs/SPEC\.md (§[\d§,\- ]+)", path.read_text()):
            referenced |= {int(n) for n in re.findall(r"\d+", refs)}
    assert referenced and referenced <= sections, sorted(referenced - sections)
