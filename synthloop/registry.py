"""The champion of a registered model, through MLflow registry aliases.

`champion` names the version in service; `previous` the one it replaced, so a rollback is one step.
Every change records its reason as a tag on the version it made champion.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from synthloop.errors import SynthloopError

CHAMPION = "champion"
PREVIOUS = "previous"


class RegistryError(SynthloopError):
    """A registered model, version or alias the command needs does not exist."""


@dataclass(frozen=True)
class Change:
    """What a promotion or rollback did."""

    name: str
    champion: str | None
    previous: str | None
    reason: str


def client_for(tracking_uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri, registry_uri=tracking_uri)


def version_by_alias(client, name: str, alias: str):
    """The model version an alias points at, or None."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def champion(client, name: str):
    return version_by_alias(client, name, CHAMPION)


def promote(client, name: str, version: str, reason: str) -> Change:
    """Make `version` the champion; the former champion becomes `previous`.

    Args:
        client: An MlflowClient on the registry.
        name: Registered model name.
        version: The version to promote.
        reason: Why (kept as the tag `promotion_reason` on the version).
    Returns:
        The aliases after the change.
    """
    from mlflow.exceptions import MlflowException

    try:
        client.get_model_version(name, str(version))
    except MlflowException:
        raise RegistryError(f"model {name!r} has no version {version}; `synthloop runs` lists the runs and their "
                            "versions") from None
    current = champion(client, name)
    previous = str(current.version) if current is not None and str(current.version) != str(version) else None
    if previous is not None:
        client.set_registered_model_alias(name, PREVIOUS, previous)
    client.set_registered_model_alias(name, CHAMPION, str(version))
    client.set_model_version_tag(name, str(version), "promotion_reason", reason[:5000])
    client.set_model_version_tag(name, str(version), "promoted_at", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    if previous is None:
        prior = version_by_alias(client, name, PREVIOUS)
        previous = str(prior.version) if prior is not None else None
    return Change(name, str(version), previous, reason)


TAG_GOAL_MET = "goal_met"
FIRST_CHAMPION_REASON = "no champion yet: the first registered version whose run met its goal"


def settle_new_version(client, name: str, version: str, goal_met: bool) -> Change | None:
    """What a newly registered version is: tagged with `goal_met`; champion if it met its goal and none exists.

    A version whose run missed its goal is never made champion here, so `synthloop predict` never serves it by
    default (`synthloop promote` still can, by hand).
    Returns:
        The promotion, or None when the version was not promoted.
    """
    client.set_model_version_tag(name, str(version), TAG_GOAL_MET, str(bool(goal_met)).lower())
    if goal_met and champion(client, name) is None:
        return promote(client, name, str(version), FIRST_CHAMPION_REASON)
    return None


def registration_note(client, name: str, version: str | None) -> str | None:
    """One line on what a run's registered version is now: the champion, or why not."""
    if version is None:
        return None
    mv = client.get_model_version(name, str(version))
    current = champion(client, name)
    if current is not None and str(current.version) == str(version):
        return (f"{name} version {version} is the champion: `synthloop predict` uses it"
                + (" (the first version that met its goal)" if mv.tags.get("promotion_reason") == FIRST_CHAMPION_REASON
                   else ""))
    if mv.tags.get(TAG_GOAL_MET) == "false":
        kept = f"the champion stays version {current.version}" if current is not None else "there is no champion yet"
        return (f"{name} version {version} is not made champion: its run missed the goal; {kept} "
                f"(`synthloop promote {version}` serves it anyway)" + _other_problem(client, name, mv, current))
    if current is not None:
        return (f"{name} version {version} registered; the champion stays version {current.version} "
                f"(`synthloop promote {version}` to serve this one)" + _other_problem(client, name, mv, current))
    return f"{name} version {version} registered; no champion yet"


def problem_of(client, run_id: str | None) -> str | None:
    """What a version's run learned: "<task> of '<target>' from <source>", from the run's tags (None if unknown)."""
    if not run_id:
        return None
    try:
        tags = client.get_run(run_id).data.tags
    except Exception:  # a run deleted from the store
        return None
    if "target" not in tags:
        return None
    return f"{tags.get('task', 'model')} of {tags['target']!r} from {tags.get('source', 'unknown data')}"


def _other_problem(client, name: str, mv, current) -> str:
    """A warning when the champion answers another problem than the new version (another target or data source):
    both were registered under one name, and `synthloop predict` serves the champion."""
    if current is None:
        return ""
    mine, theirs = problem_of(client, mv.run_id), problem_of(client, current.run_id)
    if not mine or not theirs or mine == theirs:
        return ""
    return (f"\n         note: the champion (version {current.version}) is a {theirs}, this version a {mine}: give each "
            f"problem its own registered model with `--set tracking.registered_model=NAME`")


def rollback(client, name: str, reason: str = "manual rollback") -> Change:
    """Swap `champion` and `previous`: the version served before becomes champion again."""
    current, prior = champion(client, name), version_by_alias(client, name, PREVIOUS)
    if prior is None:
        raise RegistryError(f"model {name!r} has no 'previous' version to roll back to")
    client.set_registered_model_alias(name, CHAMPION, str(prior.version))
    if current is not None:
        client.set_registered_model_alias(name, PREVIOUS, str(current.version))
    client.set_model_version_tag(name, str(prior.version), "promotion_reason", reason[:5000])
    return Change(name, str(prior.version), None if current is None else str(current.version), reason)


def version_of_run(client, name: str, run_id: str) -> str:
    """The registered version made from a run."""
    versions = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    if not versions:
        raise RegistryError(f"run {run_id} registered no version of {name!r}")
    return str(max(int(v.version) for v in versions))


def decide(metric: str, challenger: float, champion_score: float | None, margin: float,
           champion_version: str | None = None) -> tuple[bool, str]:
    """Whether a challenger replaces the champion, and why, from their scores on the same validation rows.

    Args:
        metric: The goal metric (its direction decides what "better" means).
        challenger: The challenger's score.
        champion_score: The champion's score, or None when there is no champion (or it cannot score the rows).
        margin: How much better the challenger must be, in the metric's units.
        champion_version: Named in the reason.
    Returns:
        (promote, reason).
    """
    from synthloop.judge import oriented

    if champion_score is None:
        if champion_version is None:
            return True, f"no champion yet: the challenger ({metric} {challenger:.4f} on validation) becomes champion"
        return True, (f"champion version {champion_version} cannot score the fresh validation rows; the challenger "
                      f"({metric} {challenger:.4f}) replaces it")
    gain = oriented(metric, challenger) - oriented(metric, champion_score)
    better = "higher" if oriented(metric, 1.0) > 0 else "lower"
    verdict = (f"challenger {metric} {challenger:.4f} vs champion version {champion_version} {champion_score:.4f} "
               f"on the same fresh validation rows: gain {gain:+.4f} ({better} is better), margin {margin:g}")
    if gain > margin + 1e-9:  # a gain equal to the margin (up to rounding) is not enough
        return True, f"{verdict} → promoted"
    return False, f"{verdict} → champion kept (the challenger is not better by more than the margin)"
