"""The wheel claims no generic top-level module; the old names still resolve to the same module objects."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_wheel_installs_only_the_synthloop_package(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(REPO), "-w", str(tmp_path)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("synthloop-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"synthloop", wheel.name.split("-py")[0] + ".dist-info"}
    assert {"synthloop/tasks/cache.py", "synthloop/flows/develop.py", "synthloop/deployments/serve.py",
            "synthloop/deployments/prefect.yaml"} <= set(names)


def test_old_names_are_the_same_modules_and_a_users_own_tasks_wins(tmp_path):
    same = ("import tasks.cache, synthloop.tasks.cache, flows.develop, synthloop.flows.develop;"
            "assert tasks.cache is synthloop.tasks.cache and flows.develop is synthloop.flows.develop")
    subprocess.run([sys.executable, "-c", same], cwd=REPO, check=True, timeout=120)
    (tmp_path / "tasks.py").write_text("MINE = True\n")
    mine = "import synthloop.cli, tasks; assert tasks.MINE"
    subprocess.run([sys.executable, "-c", mine], cwd=tmp_path, check=True, timeout=120)
