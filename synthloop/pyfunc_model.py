"""The code of every logged synthloop model (MLflow "models from code": nothing is pickled).

`mlflow.pyfunc.load_model(uri).predict(frame)` gives class labels (classification) or values (regression);
`predict(frame, params={"output": "proba"})` gives one probability column per class label. The files it
loads are the native ones described in `synthloop.modelstore`. To have the files checked against the
digests recorded in the store first, load with `synthloop.modelstore.load_model` instead.
"""

from __future__ import annotations

from pathlib import Path

import mlflow.models
import pandas as pd
from mlflow.pyfunc import PythonModel


class SynthloopModel(PythonModel):
    def load_context(self, context):
        from synthloop.modelstore import NATIVE_DIR, load_native

        self.model = load_native(Path(context.artifacts[NATIVE_DIR]))

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None):
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        if (params or {}).get("output", "label") == "proba" and self.model.task == "classification":
            return pd.DataFrame(self.model.predict_proba(frame), columns=[str(c) for c in self.model.classes])
        return pd.Series(self.model.predict(frame), index=frame.index, name="prediction")


mlflow.models.set_model(SynthloopModel())
