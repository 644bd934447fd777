"""`report.html`: one development run as a page a person can open, built only from what the MLflow store holds.

The parent run's params, metrics and tags, its `iterations.json`, `ledger.csv`, `design/search-itN.json` and plots,
and each iteration run's `decision.json` and `synth_*` metrics become one self-contained HTML file (plots embedded
as data URIs): the loop's path, each decision and its reason, the synthetic-data report, the design searches, the
label ledger, the test result, and links into the MLflow and Prefect UIs.

`write_report(tracker, run_id)` logs it as the artifact `report.html` of the parent run; `synthloop report RUN`
writes it to a local file (`build_report`).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import tempfile
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from synthloop.errors import SynthloopError

ARTIFACT = "report.html"
MLFLOW_DEFAULT = "http://127.0.0.1:5000"
PREFECT_DEFAULT = "http://127.0.0.1:4200"
ML_MODE = "workflowType=machine_learning"  # the MLflow UI's model-training mode (its default is GenAI)
PLOT_ORDER = ("loop.png", "label_spend.png", "confusion_matrix.png", "residuals.png", "feature_importance.png",
              "loss_curves.png")
PLOT_TITLES = {"loop.png": "The loop's path", "label_spend.png": "Score against labels spent",
               "confusion_matrix.png": "Confusion matrix (validation)", "residuals.png": "Residuals (validation)",
               "feature_importance.png": "Feature importance", "loss_curves.png": "Loss curves of the chosen model"}
SYNTH_LABELS = {"fidelity": "fidelity", "utility": "utility", "privacy": "privacy", "dcr": "distance to closest record",
                "ks": "KS complement", "tv": "TV complement", "corr": "correlation similarity"}


class ReportError(SynthloopError):
    """The run cannot be reported: unknown id, or not a development parent run."""


# reading the store ------------------------------------------------------------------------------------------------
def _is_dev_parent(run) -> bool:
    return run.data.tags.get("synthloop.kind") == "parent"


def find_run(client, run_id: str):
    """The development parent run `run_id`, or a ReportError that says what it is instead."""
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise ReportError(f"run {run_id!r}: no such MLflow run in this store; `synthloop runs` lists the "
                          "development runs") from None
    if not _is_dev_parent(run):
        kind = run.data.tags.get("synthloop.kind") or "not a synthloop run"
        raise ReportError(f"run {run_id} is not a development run ({kind}; an iteration, trial or retrain record?); "
                          "`synthloop runs` lists the development runs")
    return run


def _local_root(artifact_uri: str | None) -> Path | None:
    """A run's artifact folder when it is on this machine's disk (file:// or a plain path), else None."""
    from urllib.parse import unquote, urlparse

    if not artifact_uri:
        return None
    parsed = urlparse(artifact_uri)
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
        return Path(unquote(parsed.path))
    if parsed.scheme == "" and artifact_uri.startswith("/"):
        return Path(artifact_uri)
    return None


def _artifact(client, run_id: str, path: str, tmp: Path, artifact_uri: str | None = None) -> Path | None:
    """An artifact's file: read in place from a local store (a download copies it, at 50-100 ms a file), else
    downloaded to `tmp`."""
    root = _local_root(artifact_uri)
    if root is not None and (root / path).is_file():
        return root / path
    try:
        return Path(client.download_artifacts(run_id, path, str(tmp)))
    except Exception:  # absent (a run that ended early) or unreadable: the section says so
        return None


def _json(client, run_id: str, path: str, tmp: Path, artifact_uri: str | None = None) -> Any:
    file = _artifact(client, run_id, path, tmp, artifact_uri)
    if file is None:
        return None
    try:
        return json.loads(file.read_text())
    except ValueError:
        return None


def gather(client, run_id: str) -> dict[str, Any]:
    """Everything the report shows, read from the store: the parent run, its iterations and their runs."""
    run = find_run(client, run_id)
    exp = run.info.experiment_id
    children = client.search_runs([exp], f"tags.`mlflow.parentRunId` = '{run_id}'", max_results=5000)
    its = sorted((c for c in children if "iteration" in c.data.params and c.data.tags.get("synthloop.trial") != "true"),
                 key=lambda c: int(c.data.params["iteration"]))
    root = run.info.artifact_uri
    with tempfile.TemporaryDirectory(prefix="synthloop-report-") as tmp:
        base = Path(tmp)
        listed = {f.path for f in client.list_artifacts(run_id)}
        plot_files = sorted(f.path for f in client.list_artifacts(run_id, "plots") if not f.is_dir) \
            if "plots" in listed else []
        plot_files.sort(key=lambda p: PLOT_ORDER.index(p.rsplit("/", 1)[-1]) if p.rsplit("/", 1)[-1] in PLOT_ORDER
                        else len(PLOT_ORDER))
        plots = []
        for p in plot_files:
            file = _artifact(client, run_id, p, base / "parent", root)
            if file is not None:
                plots.append((p, base64.b64encode(file.read_bytes()).decode("ascii")))
        iterations = (_json(client, run_id, "iterations.json", base / "parent", root) or {}).get("iterations") or []
        ledger_file = _artifact(client, run_id, "ledger.csv", base / "parent", root) if "ledger.csv" in listed else None
        ledger = list(csv.DictReader(io.StringIO(ledger_file.read_text()))) if ledger_file else []
        searches = []
        if "design" in listed:
            for f in sorted(client.list_artifacts(run_id, "design"), key=lambda f: f.path):
                if f.path.endswith(".json"):
                    found = _json(client, run_id, f.path, base / "parent", root)
                    if found:
                        searches.append(found)
        runs = []
        for c in its:
            decision = _json(client, c.info.run_id, "decision.json", base / c.info.run_id, c.info.artifact_uri) or {}
            runs.append({"run_id": c.info.run_id, "name": c.info.run_name, "params": dict(c.data.params),
                         "metrics": dict(c.data.metrics), "tags": dict(c.data.tags), "decision": decision})
    tags = dict(run.data.tags)
    try:
        versions = [(v.name, v.version, list(getattr(v, "aliases", []) or []))
                    for v in client.search_model_versions(f"run_id = '{run_id}'")]
    except Exception:  # a store without a registry
        versions = []
    return {"versions": versions, "run_id": run_id, "run_name": run.info.run_name, "experiment_id": exp, "status": run.info.status,
            "start_time": run.info.start_time, "end_time": run.info.end_time, "params": dict(run.data.params),
            "metrics": dict(run.data.metrics), "tags": tags, "iterations": iterations, "iteration_runs": runs,
            "ledger": ledger, "searches": searches, "plots": plots,
            "prefect_flow_run_id": tags.get("prefect.flow_run_id"),
            "prefect_flow_run_name": tags.get("prefect.flow_run_name")}


# formatting -------------------------------------------------------------------------------------------------------
def _num(value: Any, spec: str = ".4f") -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return "–"
        if isinstance(value, int) or (spec == "g"):
            return format(value, "g")
        return format(value, spec)
    return str(value)


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _table(head: list[str], rows: list[list[str]], cls: str = "") -> str:
    """A table of already-escaped cells."""
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "\n".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>\n{body}\n</tbody></table>'


def _time(ms: int | None) -> str:
    if not ms:
        return "–"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _higher(metric: str) -> bool:
    from synthloop.config import HIGHER_IS_BETTER

    return HIGHER_IS_BETTER.get(metric, True)


def _short(value: Any) -> str:
    """A diagnosis value in a few characters: numbers rounded, long lists counted."""
    if isinstance(value, float):
        return _num(value, ".4g")
    if isinstance(value, (list, tuple)):
        if len(value) > 6:
            return f"{len(value)} items"
        return "[" + ", ".join(_short(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_short(v)}" for k, v in list(value.items())[:8]) + "}"
    return str(value)


def _diagnosis(diagnosis: dict[str, Any]) -> str:
    if not diagnosis:
        return '<span class="muted">no diagnostic fits (none needed)</span>'
    items = []
    for key, value in diagnosis.items():
        if isinstance(value, dict):
            text = "; ".join(f"{k} {_short(v)}" for k, v in value.items())
        else:
            text = _short(value)
        items.append(f"<li><b>{_e(key.replace('_', ' '))}</b>: {_e(text)}</li>")
    return f'<ul class="diag">{"".join(items)}</ul>'


# the page ---------------------------------------------------------------------------------------------------------
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9;
line-height:1.45;font-size:15px}
main{max-width:1120px;margin:0 auto;padding:24px 28px 60px;background:#fff;min-height:100vh}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 10px;padding-bottom:4px;border-bottom:2px solid #e3e6eb}
h3{font-size:16px;margin:18px 0 6px}
.verdict{display:inline-block;padding:3px 10px;border-radius:4px;font-weight:600;color:#fff;margin-right:8px}
.met{background:#1f8a4c}.missed{background:#b3261e}.muted{color:#6b7280}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:12px 0}.facts dt{color:#6b7280}
.facts dd{margin:0}
table{border-collapse:collapse;margin:8px 0 12px;font-size:14px;width:100%}
th,td{border:1px solid #dde1e7;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f0f2f5;font-weight:600}tbody tr:nth-child(even){background:#fafbfc}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
table.narrow{width:auto}
.decision{font-weight:600;white-space:nowrap}.stop{color:#1f8a4c}
ul.diag,ul.alt{margin:4px 0 0;padding-left:18px;font-size:13px;color:#374151}
details{margin:4px 0}summary{cursor:pointer;color:#2457a6;font-size:13px}
.links a{display:inline-block;margin:2px 14px 2px 0}
a{color:#2457a6}
figure{margin:10px 0 18px}figure img{max-width:100%;border:1px solid #e3e6eb}figcaption{font-size:13px;color:#6b7280}
.plots{display:grid;grid-template-columns:1fr 1fr;gap:10px 18px}
code{background:#f0f2f5;padding:1px 4px;border-radius:3px;font-size:13px}
"""


def render(data: dict[str, Any], mlflow_base: str = MLFLOW_DEFAULT, prefect_base: str = PREFECT_DEFAULT,
           live: bool = False) -> str:
    """The report as one HTML page (all values escaped; plots embedded)."""
    p, m, t = data["params"], data["metrics"], data["tags"]
    metric = p.get("goal_metric") or (data["iterations"][0]["metric"] if data["iterations"] else "score")
    threshold = p.get("config.goal.threshold")
    goal = (f"{metric} {'>=' if _higher(metric) else '<='} {threshold}" if threshold not in (None, "None", "")
            else f"{metric} clearly better than the baseline")
    goal_met = t.get("goal_met") == "true"
    test = m.get(f"test_{metric}")
    val = m.get(f"val_{metric}")
    exp, run = data["experiment_id"], data["run_id"]
    name = data["run_name"] or run
    out: list[str] = []
    add = out.append

    # header and facts
    verdict = ('<span class="verdict met">goal met</span>' if goal_met else
               '<span class="verdict missed">goal NOT met</span>') if "goal_met" in t else \
        f'<span class="verdict missed">{_e(data["status"])}</span>'
    add(f"<h1>synthloop run {_e(name)}</h1>")
    add(f"<p>{verdict}<b>test {_e(metric)} {_e(_num(test))}</b> "
        f"(validation {_e(_num(val))}; goal: {_e(goal)})</p>")
    facts = [("MLflow run", f"<code>{_e(run)}</code> (experiment {_e(exp)})"),
             ("Prefect flow run", f"{_e(data['prefect_flow_run_name'] or '–')} "
                                  f"(<code>{_e(data['prefect_flow_run_id'] or '–')}</code>)"),
             ("started", _e(_time(data["start_time"]))),
             ("data", f"{_e(t.get('source', p.get('data.source', '–')))} — {_e(t.get('task', '–'))} of "
                      f"<code>{_e(t.get('target', '–'))}</code>, {_e(p.get('data.rows', '?'))} rows "
                      f"({_e(p.get('data.train_rows', '?'))} train / {_e(p.get('data.pool_rows', '?'))} pool / "
                      f"{_e(p.get('data.val_rows', '?'))} validation / {_e(p.get('data.test_rows', '?'))} test)"),
             ("strategy", _e(p.get("config.data.strategy", "–"))),
             ("iterations", f"{_e(_num(m.get('iterations'), 'g'))}, stopped by {_e(t.get('stopped_by', '–'))}"),
             ("chosen model", f"iteration {_e(t.get('best_iteration', '–'))}: <code>{_e(t.get('best_model', '–'))}</code>")]
    for vname, version, aliases in data.get("versions", []):
        facts.append(("registered", f"<code>{_e(vname)}</code> version {_e(version)}"
                      + (f" ({_e(', '.join(aliases))})" if aliases else "")))
    if data["status"] not in ("RUNNING", "FINISHED"):  # written at the run's end, it is still RUNNING then
        facts.append(("ended", _e(data["status"]) + (f" — {_e(t['failure_reason'])}" if t.get("failure_reason") else "")))
    if not goal_met and t.get("goal_shortfall"):
        facts.append(("why not met", _e(t["goal_shortfall"])))
    add('<dl class="facts">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts) + "</dl>")

    # links
    ids = json.dumps([r["run_id"] for r in data["iteration_runs"]], separators=(",", ":"))
    links = [(f"{mlflow_base}/#/experiments/{exp}/runs/{run}?{ML_MODE}", "MLflow: this run"),
             (f"{mlflow_base}/#/compare-runs?runs={ids}&experiments=[\"{exp}\"]&{ML_MODE}",
              "MLflow: its iterations compared"),
             (f"{mlflow_base}/#/experiments/{exp}/runs?viewStateShareKey=synthloop-{metric}&{ML_MODE}",
              "MLflow: runs table")]
    if data["prefect_flow_run_id"]:
        links.append((f"{prefect_base}/runs/flow-run/{data['prefect_flow_run_id']}", "Prefect: the flow run"))
    add("<h2>Links</h2>")
    add('<p class="links">' + "".join(f'<a href="{_e(u)}">{_e(label)}</a>' for u, label in links) + "</p>")
    if not live:
        add('<p class="muted">The links open the UIs started by <code>synthloop ui</code> '
            f"(MLflow at {_e(mlflow_base)}, Prefect at {_e(prefect_base)}; it may pick other free ports).</p>")

    # the loop's path
    add("<h2>The loop's path: each decision and its reason</h2>")
    plots = dict(data["plots"])
    if "plots/loop.png" in plots:
        add(_figure("plots/loop.png", plots.pop("plots/loop.png")))
    by_it = {int(r["params"]["iteration"]): r for r in data["iteration_runs"]}
    iterations = data["iterations"] or [_iteration_from_run(r, metric) for r in data["iteration_runs"]]
    rows = []
    for it in iterations:
        child = by_it.get(int(it["iteration"]), {})
        cm = child.get("metrics", {})
        rows_cell = f"{_num(it.get('train_rows'), 'g')} + {_num(it.get('synthetic_rows', 0), 'g')}"
        decision = it.get("decision", "–")
        cls = "decision stop" if decision == "stop" else "decision"
        alts = it.get("alternatives") or child.get("decision", {}).get("alternatives") or []
        detail = ""
        if alts:
            detail += ("<details><summary>moves passed over</summary><ul class=\"alt\">"
                       + "".join(f"<li>{_e(a)}</li>" for a in alts) + "</ul></details>")
        diag = child.get("decision", {}).get("diagnosis")
        if diag is not None:
            detail += f"<details><summary>diagnosis</summary>{_diagnosis(diag)}</details>"
        rows.append([_e(it["iteration"]), _e(it.get("action_in", "–")),
                     f'<span class="n">{_e(_num(it.get("val_metrics", {}).get(metric)))}</span>',
                     _e(_num(cm.get(f"baseline_{metric}"))), _e(rows_cell),
                     f"<code>{_e(child.get('params', {}).get('model_family', (it.get('model') or '–').split('(')[0]))}</code>",
                     f'<span class="{cls}">{_e(decision)}</span>',
                     _e(it.get("reason", "–")) + detail, _e(_num(it.get("label_cost"), "g"))])
    add(_table(["it", "came from", f"validation {_e(metric)}", "baseline", "rows real + synthetic", "model",
                "decision", "reason", "labels spent so far"], rows))

    # synthetic data
    synth = [(r, {k.removeprefix("synth_"): v for k, v in r["metrics"].items() if k.startswith("synth_")})
             for r in data["iteration_runs"]]
    synth = [(r, s) for r, s in synth if s]
    add("<h2>Synthetic rows</h2>")
    if synth:
        keys = sorted({k for _, s in synth for k in s})
        add("<p>Each synthetic set was fitted to the real train split only and scored for fidelity, utility and "
            "privacy (metrics <code>synth_*</code> on the iteration that used it).</p>")
        add(_table(["iteration", "generator", "ratio"] + [_e(k.replace("_", " ")) for k in keys],
                   [[_e(r["params"]["iteration"]), _e(r["params"].get("synthetic.generator", "–")),
                     _e(r["params"].get("synthetic.ratio", "–"))] + [_e(_num(s.get(k))) for k in keys]
                    for r, s in synth]))
    else:
        add('<p class="muted">No synthetic rows were used in this run.</p>')

    # design searches
    if data["searches"]:
        add("<h2>Design searches</h2>")
        for s in data["searches"]:
            trials = s.get("trials", [])
            cv = f"cv_{s.get('metric', metric)}"
            add(f"<h3>Iteration {_e(s.get('iteration'))}: {len(trials)} designs, {_e(s.get('folds', '?'))}-fold "
                f"cross-validation on train</h3>")
            if s.get("executor"):
                add(f'<p class="muted">{_e(s["executor"])}</p>')
            shown = trials[:12]
            add(_table(["rank", "design", "family", _e(cv), "± std", "seconds", "role"],
                       [[_e(r.get("rank")), _e(r.get("label")), _e(r.get("family")), _e(_num(r.get(cv))),
                         _e(_num(r.get("cv_std"))), _e(_num(r.get("seconds"), ".2f")), _e(r.get("role") or "")]
                        for r in shown]))
            if len(trials) > len(shown):
                add(f'<p class="muted">… and {len(trials) - len(shown)} more designs '
                    f"(<code>design/search-it{_e(s.get('iteration'))}.json</code>).</p>")

    # labels
    add("<h2>Labels: the ledger</h2>")
    if data["ledger"]:
        total = sum(float(r.get("total") or 0) for r in data["ledger"])
        count = lambda synthetic: sum(int(float(r.get("n_labels") or 0)) for r in data["ledger"]
                                      if (r.get("kind") == "synthetic") == synthetic)
        budget = p.get("config.annotation.budget")
        add(f"<p><b>Spent {_e(_num(total, 'g'))}</b>"
            + (f" of a budget of {_e(_num(float(budget), 'g'))}" if budget not in (None, "None", "") else "")
            + f" on {count(False)} labels"
            + (f"; {count(True)} synthetic labels at no cost" if count(True) else "")
            + " (<code>ledger.csv</code>).</p>")
        sources: dict[str, list[float]] = {}
        for r in data["ledger"]:
            acc = sources.setdefault(r.get("source", "?"), [0, 0.0])
            acc[0] += int(float(r.get("n_labels") or 0))
            acc[1] += float(r.get("total") or 0)
        add(_table(["source", "labels", "cost"], [[_e(s), _e(n), _e(_num(c, "g"))] for s, (n, c) in sources.items()],
                   "narrow"))
        add("<h3>Every booking</h3>")
        add(_table(["iteration", "source", "kind", "labels", "cost per label", "total"],
                   [[_e(r.get("iteration")), _e(r.get("source")), _e(r.get("kind")), _e(r.get("n_labels")),
                     _e(r.get("cost_per_label")), _e(r.get("total"))] for r in data["ledger"]], "narrow"))
        if "plots/label_spend.png" in plots:
            add(_figure("plots/label_spend.png", plots.pop("plots/label_spend.png")))
    else:
        add('<p class="muted">No labels were bought in this run (no ledger).</p>')

    # test
    add("<h2>Test result</h2>")
    tests = sorted((k.removeprefix("test_"), v) for k, v in m.items() if k.startswith("test_"))
    if tests:
        add(f"<p>The sealed test split was opened once{' at ' + _e(t['test_opened_at']) if t.get('test_opened_at') else ''}"
            f", for the model chosen on validation. Validation − test gap in {_e(metric)}: "
            f"<b>{_e(_num(m.get('val_test_gap'), '+.4f'))}</b>; looks at validation: "
            f"{_e(_num(m.get('looks_at_validation'), 'g'))}.</p>")
        add(_table(["metric", "validation", "test"],
                   [[("<b>" + _e(k) + "</b>") if k == metric else _e(k), _e(_num(m.get(f"val_{k}"))), _e(_num(v))]
                    for k, v in tests], "narrow"))
    else:
        add('<p class="muted">The run ended before the test split was opened.</p>')
    registered = [(k, v) for k, v in t.items() if k in ("promotion", "promotion_reason")]
    for k, v in registered:
        add(f"<p>{_e(k.replace('_', ' '))}: {_e(v)}</p>")

    # remaining plots
    if plots:
        add("<h2>Plots</h2>")
        add('<div class="plots">' + "".join(_figure(k, v) for k, v in plots.items()) + "</div>")

    add(f'<p class="muted">Built from what the MLflow store holds for this run; <code>synthloop report {_e(run)}</code> '
        "writes it again.</p>")
    title = f"synthloop run {name} — {'goal met' if goal_met else 'goal not met'}"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{_e(title)}</title>"
            f"<style>{CSS}</style></head>\n<body><main>\n" + "\n".join(out) + "\n</main></body></html>\n")


def _figure(path: str, b64: str) -> str:
    title = PLOT_TITLES.get(path.rsplit("/", 1)[-1], path)
    return (f'<figure><img alt="{_e(title)}" src="data:image/png;base64,{b64}">'
            f"<figcaption>{_e(title)} (<code>{_e(path)}</code>)</figcaption></figure>")


def _iteration_from_run(r: dict[str, Any], metric: str) -> dict[str, Any]:
    """An iteration's row from its run alone (a run that ended before `iterations.json` was written)."""
    p, m, t = r["params"], r["metrics"], r["tags"]
    return {"iteration": int(p["iteration"]), "action_in": t.get("action_in", "–"),
            "val_metrics": {metric: m.get(f"val_{metric}")}, "train_rows": int(float(p.get("rows_real", 0))),
            "synthetic_rows": int(float(p.get("rows_synthetic", 0))), "decision": t.get("decision", "–"),
            "reason": t.get("reason", "–"), "label_cost": m.get("label_cost"), "model": p.get("model_family", "–")}


# entry points -----------------------------------------------------------------------------------------------------
def ui_bases(tracking_uri: str | None) -> tuple[str, str, bool]:
    """(MLflow UI, Prefect UI, live): the servers `synthloop ui` runs for this store, else the default ports."""
    try:
        from synthloop import ui

        state = ui.read_state(tracking_uri) or {}
    except Exception:
        state = {}
    mlflow_url, prefect_url = state.get("mlflow", {}).get("url"), state.get("prefect", {}).get("url")
    return mlflow_url or MLFLOW_DEFAULT, prefect_url or PREFECT_DEFAULT, bool(mlflow_url and prefect_url)


def build_report(client, run_id: str, tracking_uri: str | None = None) -> str:
    """The report of development run `run_id` in `client`'s store, as HTML.

    Raises:
        ReportError: no such run, or not a development parent run.
    """
    mlflow_base, prefect_base, live = ui_bases(tracking_uri)
    return render(gather(client, run_id), mlflow_base, prefect_base, live)


def write_report(tracker, run_id: str) -> str:
    """Log `report.html` as an artifact of the parent run `run_id` (a `synthloop.tracking.Tracker`'s store).

    Returns:
        The HTML.
    """
    html = build_report(tracker.client, run_id, tracker.uri)
    tracker.log_text(run_id, html, ARTIFACT)
    return html


def resolve_run(client, ref: str) -> str:
    """A run id, or the one development run whose id starts with `ref` (as `synthloop runs` shows them)."""
    if len(ref) == 32:
        return ref
    exps = [e.experiment_id for e in client.search_experiments()]
    found = [r.info.run_id for r in client.search_runs(exps, "tags.`synthloop.kind` = 'parent'", max_results=50_000)
             if r.info.run_id.startswith(ref)] if exps and len(ref) >= 4 else []
    if len(found) != 1:
        raise ReportError(f"run {ref!r}: {'no development run' if not found else f'{len(found)} development runs'} "
                          "in this store start with it; `synthloop runs` lists them")
    return found[0]


# `synthloop report RUN` -------------------------------------------------------------------------------------------
def add_commands(sub) -> None:
    from synthloop.cli import HelpFormatter

    p = sub.add_parser("report", formatter_class=HelpFormatter,
                       help="write a development run's report.html (decisions, synthetic data, ledger, test, links)")
    p.add_argument("run", metavar="RUN", help="the MLflow run id of a development run (or a unique prefix)")
    p.add_argument("--out", metavar="FILE", help="where to write it (default: report-<run>.html here)")
    p.add_argument("--tracking-uri", metavar="URI",
                   help="MLflow store (default: MLFLOW_TRACKING_URI, else sqlite:///./mlruns/mlflow.db)")
    p.set_defaults(handler=_cmd_report)


def _cmd_report(args) -> int:
    import os

    from mlflow import MlflowClient

    from synthloop.tracking import resolve_tracking_uri

    uri, _ = resolve_tracking_uri(args.tracking_uri)
    db = Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None
    if db is not None and not db.is_file():  # a store that does not exist is not created
        how = ("MLFLOW_TRACKING_URI" if os.environ.get("MLFLOW_TRACKING_URI") else
               "--tracking-uri" if args.tracking_uri else "the default, ./mlruns/mlflow.db here")
        raise ReportError(f"no MLflow store at {db} (from {how}): pass --tracking-uri of the store that holds "
                          "the run, or run the command in the project folder")
    client = MlflowClient(uri)
    run_id = resolve_run(client, args.run)
    html = build_report(client, run_id, uri)  # refuses before any file is made
    out = Path(args.out or f"report-{run_id}.html")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    print(out.resolve())
    return 0
