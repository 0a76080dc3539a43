import os
import subprocess
import sys
from pathlib import Path

import pytest

from rewardforge.torch_environment import (
    apply_torch_environment_defaults,
    unset_torch_environment_defaults,
)

THP_SETTING = Path("/sys/kernel/mm/transparent_hugepage/enabled")

# Runs the `rewardforge` entry point (its --help), then imports torch and fills a 64 MiB tensor,
# and prints how much of this process's memory sits in huge pages.
CLI_THEN_TORCH = """
import sys
sys.argv = ["rewardforge", "--help"]
from rewardforge.cli import main
try:
    main()
except SystemExit:
    pass
assert "torch" not in sys.modules, "the CLI imported torch before setting its environment"
import torch
tensor = torch.ones(16 * 2**20)
smaps = open("/proc/self/smaps").read().splitlines()
print("HUGE_KB", sum(int(line.split()[1]) for line in smaps if line.startswith("AnonHugePages")))
"""


def huge_page_kib(environment: dict[str, str]) -> int:
    done = subprocess.run(
        [sys.executable, "-c", CLI_THEN_TORCH],
        capture_output=True,
        text=True,
        env=environment,
        check=True,
    )
    return int(done.stdout.split("HUGE_KB")[-1])


@pytest.fixture
def environment_without_thp() -> dict[str, str]:
    if not THP_SETTING.exists() or "[never]" in THP_SETTING.read_text():
        pytest.skip("this kernel offers no transparent huge pages")
    return {name: value for name, value in os.environ.items() if name != "THP_MEM_ALLOC_ENABLE"}


def test_the_cli_gives_torch_huge_pages_before_torch_loads(environment_without_thp):
    assert huge_page_kib(environment_without_thp) >= 32 * 1024


def test_a_users_own_setting_wins(environment_without_thp):
    assert huge_page_kib({**environment_without_thp, "THP_MEM_ALLOC_ENABLE": "0"}) == 0


def test_defaults_fill_only_unset_variables(monkeypatch):
    monkeypatch.delenv("THP_MEM_ALLOC_ENABLE", raising=False)
    assert unset_torch_environment_defaults() == ["THP_MEM_ALLOC_ENABLE=1"]
    apply_torch_environment_defaults()
    assert unset_torch_environment_defaults() == []
    assert os.environ["THP_MEM_ALLOC_ENABLE"] == "1"
    monkeypatch.setenv("THP_MEM_ALLOC_ENABLE", "0")
    apply_torch_environment_defaults()
    assert os.environ["THP_MEM_ALLOC_ENABLE"] == "0"
