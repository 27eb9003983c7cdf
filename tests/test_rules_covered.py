"""Every built-in rule has unit tests of its own (tests/test_rules_*.py), on hand-built facts."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.builders import RULES


def test_every_built_in_rule_is_tested_on_hand_built_facts():
    text = "\n".join(p.read_text() for p in Path(__file__).parent.glob("test_rules_*.py"))
    named = set(re.findall(r'(?:findings|codes|lines)\(\s*"([a-z0-9-]+)"', text))
    assert named <= set(RULES), named - set(RULES)  # no test names a rule that does not exist
    assert sorted(set(RULES) - named) == []
