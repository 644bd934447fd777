"""Resume keys: a change to the project's code makes a resumed run recompute instead of reusing old results."""

from __future__ import annotations

from pathlib import Path

from synthloop.tasks.cache import code_digest, source_tree_digest


def test_a_changed_library_module_changes_the_code_digest(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "data.py").write_text("def read():\n    return 1\n")
    (pkg / "notes.txt").write_text("not code")
    before = source_tree_digest([pkg])
    assert source_tree_digest([pkg]) == before
    (pkg / "notes.txt").write_text("still not code")
    assert source_tree_digest([pkg]) == before, "only Python sources count"
    (pkg / "sub" / "data.py").write_text("def read():\n    return 2\n")
    assert source_tree_digest([pkg]) != before
    (pkg / "sub" / "data.py").rename(pkg / "data.py")
    moved = source_tree_digest([pkg])
    assert moved not in (before, source_tree_digest([pkg / "sub"]))


def test_the_code_digest_covers_the_library_the_stages_and_the_flows():
    from synthloop import flows
    import synthloop
    from synthloop import tasks

    roots = [Path(p.__file__).parent for p in (synthloop, tasks, flows)]
    assert code_digest() == source_tree_digest(roots)
    assert code_digest() != source_tree_digest(roots[1:]), "synthloop/ (e.g. data.py) must be part of the key"
