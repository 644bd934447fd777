# Installed as synthloop.<this folder>; imported by its old top-level name from the repository folder, it becomes
# that same package (synthloop/_legacy_names.py), so no module is loaded twice.
if __name__ in ("tasks", "flows", "deployments"):
    from synthloop import _legacy_names

    _legacy_names.adopt(__name__)
