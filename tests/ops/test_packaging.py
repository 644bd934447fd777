"""The wheel claims no generic top-level module, so a project's own `tasks.py` or `flows.py` never collides with ours."""

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
            "synthloop/deployments/prefect.yaml", "synthloop/synth/cart.py", "synthloop/synth/privacy.py"} <= set(names)


def test_a_users_own_tasks_and_flows_modules_do_not_collide_with_the_flow(tmp_path):
    (tmp_path / "tasks.py").write_text("MINE = True\n")
    (tmp_path / "flows.py").write_text("MINE = True\n")
    code = "import synthloop.flows.develop, synthloop.tasks.cache, tasks, flows; assert tasks.MINE and flows.MINE"
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True, timeout=120)
