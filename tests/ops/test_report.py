"""`report.html`: a real run's report as an MLflow artifact, and `synthloop report RUN` writing the same page."""

from __future__ import annotations

import json
import re
from html import escape
from pathlib import Path

import pytest

from synthloop import records, report
from synthloop.config import Config

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _artifact_text(client, run_id: str, tmp_path: Path) -> str:
    assert report.ARTIFACT in {a.path for a in client.list_artifacts(run_id)}, "report.html is not on the run"
    return Path(client.download_artifacts(run_id, report.ARTIFACT, str(tmp_path / "dl"))).read_text(encoding="utf-8")


def _text(html: str) -> str:
    """The page's visible text, roughly: tags dropped, entities kept escaped as in the source."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _check_common(html: str, summary: dict, client) -> None:
    run_id, flow_run = summary["mlflow_run_id"], summary["prefect_flow_run_id"]
    exp = client.get_run(run_id).info.experiment_id
    metric = summary["goal_metric"]
    for it in summary["iterations"]:  # each iteration's decision and reason, on its own row
        row = re.search(rf"<tr><td>{it['iteration']}</td>.*?</tr>", html, re.DOTALL)
        assert row, f"no row for iteration {it['iteration']}"
        assert f">{escape(it['decision'])}</span>" in row.group(0)
        assert escape(it["reason"]) in row.group(0)
        assert f"{it['val_metrics'][metric]:.4f}" in row.group(0)
    test = summary["test_metrics"][metric]
    best = next(it for it in summary["iterations"] if it["iteration"] == summary["best_iteration"])
    assert (f"<td><b>{metric}</b></td><td>{best['val_metrics'][metric]:.4f}</td><td>{test:.4f}</td>") in html
    assert f"test {metric} {test:.4f}" in _text(html)
    assert f'href="http://127.0.0.1:5000/#/experiments/{exp}/runs/{run_id}?workflowType=machine_learning"' in html
    assert f'href="http://127.0.0.1:4200/runs/flow-run/{flow_run}"' in html
    children = [c for c in client.search_runs([exp], f"tags.`mlflow.parentRunId` = '{run_id}'")
                if "iteration" in c.data.params and c.data.tags.get("synthloop.trial") != "true"]
    assert len(children) == len(summary["iterations"])
    ids = json.dumps([c.info.run_id for c in sorted(children, key=lambda c: int(c.data.params["iteration"]))],
                     separators=(",", ":"))
    assert f"compare-runs?runs={escape(ids)}&amp;" in html, "the compare link names the run's own iterations"
    # the plots are embedded: the page stands alone
    assert html.count('src="data:image/png;base64,') >= 3
    assert not re.search(r'<img[^>]+src="(?!data:)', html)


def test_a_goal_met_at_once_run_has_its_report(mlflow_uri, client, tmp_path, monkeypatch, capsys):
    from synthloop.flows.develop import develop

    from synthloop.cli import main
    from synthloop.tracking import Tracker

    cfg = Config.load(None, {"data.source": "sklearn:breast_cancer", "data.target": "target",
                             "goal.metric": "accuracy", "goal.threshold": 0.8, "threads": 1})
    summary = develop(cfg)
    assert len(summary["iterations"]) == 1 and summary["goal_met"]
    run_id = summary["mlflow_run_id"]
    records.write_report(Tracker(mlflow_uri, cfg.tracking.experiment), run_id)
    html = _artifact_text(client, run_id, tmp_path)
    _check_common(html, summary, client)
    assert '<span class="verdict met">goal met</span>' in html
    assert "No labels were bought in this run" in html and "No synthetic rows were used" in html
    assert "goal: accuracy &gt;= 0.8" in html

    monkeypatch.chdir(tmp_path)
    assert main(["report", run_id]) == 0
    out = tmp_path / f"report-{run_id}.html"
    assert capsys.readouterr().out.strip() == str(out.resolve())
    assert out.read_text(encoding="utf-8") == html, "`synthloop report` writes the page the run holds"


def test_a_run_that_goes_back_reports_decisions_ledger_and_test(mlflow_uri, client, tmp_path, monkeypatch, capsys):
    from synthloop.cli import main

    monkeypatch.chdir(tmp_path)
    argv = ["run", "--data", "sklearn:digits", "--set", "data.initial_labelled=60", "--set", "annotation.budget=200",
            "--set", "annotation.batch_size=100", "--goal", "accuracy >= 0.99", "--max-iterations", "2",
            "--threads", "1", "--json"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    its = summary["iterations"]
    assert len(its) == 2 and its[0]["decision"] == "collect_labels" and its[1]["decision"] == "stop"
    run_id = summary["mlflow_run_id"]
    html = _artifact_text(client, run_id, tmp_path)  # written by `synthloop run` at the run's end
    _check_common(html, summary, client)
    assert '<span class="verdict missed">goal NOT met</span>' in html

    spent = summary["label_cost"]
    assert spent > 0
    assert f"<b>Spent {spent:g}</b> of a budget of 200 on 100 labels" in html
    ledger = client.download_artifacts(run_id, "ledger.csv", str(tmp_path / "ledger"))
    bookings = Path(ledger).read_text().strip().splitlines()[1:]
    assert len(bookings) == 1 and bookings[0].startswith("annotator,1,100,")
    assert re.search(r"<tr><td>1</td><td>annotator</td><td>label</td><td>100</td>", html)
    assert "the goal &gt;= 0.99" in html and "moves passed over" in html and "learning curve" in html

    out = tmp_path / "sub" / "r.html"
    assert main(["report", run_id, "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == html


def test_report_refuses_what_is_not_a_development_run(mlflow_uri, client, tmp_path, monkeypatch, capsys):
    from synthloop.cli import main
    from synthloop.tracking import Tracker

    monkeypatch.chdir(tmp_path)
    assert main(["report", "0123456789abcdef0123456789abcdef"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no such MLflow run" in err
    tracker = Tracker(mlflow_uri, "synthloop")
    parent = tracker.get_or_create_parent("flow-1", "flow-one")
    child = tracker.get_or_create_child(parent, "iteration-1", "iteration-1")
    assert main(["report", child, "--out", "x.html"]) == 2
    assert "is not a development run" in capsys.readouterr().err
    assert main(["report", "nope"]) == 2
    assert list(tmp_path.glob("*.html")) == []
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert main(["report", parent]) == 2  # no store here: refused, and none is created
    assert "no MLflow store at" in capsys.readouterr().err and list(elsewhere.iterdir()) == []
    monkeypatch.chdir(tmp_path)  # the store of the ./mlruns default: an (empty) development run is reported
    assert main(["report", parent[:8]]) == 0 and (tmp_path / f"report-{parent}.html").is_file()


def test_values_are_escaped():
    data = {"params": {"goal_metric": "accuracy", "config.goal.threshold": "0.9"}, "metrics": {"test_accuracy": 0.5},
            "tags": {"goal_met": "false", "best_model": "<b>x</b>"}, "iterations": [
                {"iteration": 1, "decision": "stop", "reason": "<script>alert(1)</script> & more", "val_metrics": {}}],
            "iteration_runs": [], "ledger": [], "searches": [], "plots": [], "run_id": "r" * 32, "run_name": "a&b",
            "experiment_id": "1", "status": "FINISHED", "start_time": 0, "end_time": 0, "prefect_flow_run_id": None,
            "prefect_flow_run_name": None}
    html = report.render(data)
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "synthloop run a&amp;b" in html and "Prefect: the flow run" not in html
