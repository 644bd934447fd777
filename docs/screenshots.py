"""Screenshots of both UIs showing a run of the default scenario (not run by the tests).

    python docs/screenshots.py            # writes docs/prefect-ui.png, docs/mlflow-ui.png, docs/mlflow-run.png,
                                          # docs/mlflow-compare.png

Needs Debian's `chromium` package (`apt-get install -y chromium`). It starts `synthloop ui` in a
temporary project, runs `synthloop run` there (so the run appears in both UIs), photographs the pages
with headless Chromium, and stops both servers by their PIDs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parent
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    sys.exit("screenshots: no chromium found; install Debian's package: apt-get install -y chromium")


def shoot(browser: str, url: str, out: Path, size: str = "1500,950", wait_ms: int = 20000) -> None:
    """One page, after its scripts had `wait_ms` of virtual time to render."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={size}",
                        f"--virtual-time-budget={wait_ms}", f"--screenshot={out}", url],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=180)
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB) from {url}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DOCS, help="folder for the PNG files")
    parser.add_argument("--keep", action="store_true", help="keep the temporary project (prints its path)")
    args = parser.parse_args()
    browser = chromium()
    project = Path(tempfile.mkdtemp(prefix="synthloop-shots-"))
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI")}
    env["PREFECT_HOME"] = str(project / "prefect-home")  # a clean Prefect database: only this run on screen
    state_file = project / "mlruns" / ".servers.json"
    ui = subprocess.Popen([sys.executable, "-m", "synthloop", "ui"], cwd=project, env=env, start_new_session=True,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    state = None
    try:
        deadline = time.monotonic() + 240
        while not state_file.exists():
            if ui.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"screenshots: synthloop ui did not start: {ui.stderr.read() if ui.poll() is not None else 'timeout'}")
            time.sleep(0.5)
        state = json.loads(state_file.read_text())
        run = subprocess.run([sys.executable, "-m", "synthloop", "run", "--json"], cwd=project, env=env,
                             check=True, capture_output=True, text=True)
        summary = json.loads(run.stdout.strip().splitlines()[-1])
        prefect = state["prefect"]["url"]
        args.out.mkdir(parents=True, exist_ok=True)
        shoot(browser, f"{prefect}/runs/flow-run/{summary['prefect_flow_run_id']}", args.out / "prefect-ui.png")
        links = summary["links"]  # the links `synthloop run` prints, on the live MLflow UI
        # MLflow's assistant panel opens on a localhost UI in every fresh browser profile (no URL or server setting
        # closes it): the pages are shot wide enough that the table and the story stay in view beside it.
        shoot(browser, links["runs"], args.out / "mlflow-ui.png", size="2100,950")  # goal/test metric, goal_met, cost
        shoot(browser, links["run"], args.out / "mlflow-run.png", size="1700,1900")  # the description tells the story
        shoot(browser, links["compare"], args.out / "mlflow-compare.png")  # its iterations side by side
    finally:
        if ui.poll() is None:
            ui.send_signal(signal.SIGINT)
            try:
                ui.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(ui.pid, signal.SIGKILL)
        for name in ("prefect", "mlflow"):
            if state and name in state:
                try:
                    os.killpg(state[name]["pid"], signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if args.keep:
            print(f"project kept in {project}")
        else:
            shutil.rmtree(project, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
