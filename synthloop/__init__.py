# Transitional aliases of the old top-level names `tasks`, `flows`, `deployments` (see synthloop/_legacy_names.py).
from synthloop import _legacy_names

_legacy_names.install()
