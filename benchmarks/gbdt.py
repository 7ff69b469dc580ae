"""The GBDT side of `python -m benchmarks quality`: a scikit-learn
HistGradientBoostingClassifier on every raw column but the label source, tuned
by an inner cross-validation on a fold's training rows only."""

from __future__ import annotations

# The GBDT's search space, tried by inner cross-validation on each fold's training
# rows (early stopping picks the number of trees inside each fit).
GBDT_GRID = {
    "learning_rate": (0.03, 0.1),
    "max_leaf_nodes": (15, 63),
    "min_samples_leaf": (20, 100),
}
GBDT_FIXED = {"max_iter": 1000, "l2_regularization": 1.0, "early_stopping": True,
              "validation_fraction": 0.1, "n_iter_no_change": 20}
GBDT_INNER_FOLDS = 3


def gbdt_frame(rows: list[dict[str, str]], categories: dict[str, list[str]] | None = None):
    """Every raw column but the label source, numeric where the schema says so;
    text columns as pandas categories (fixed from the training rows)."""
    import pandas as pd

    from models import features
    from serving.client import load_columns

    columns = {n: c for n, c in load_columns().items() if n != features.TIPS_KEY}
    frame = pd.DataFrame([{n: r.get(n, "") for n in columns} for r in rows])
    categories = dict(categories or {})
    for name, column in columns.items():
        cells = frame[name].replace("", None)
        if column.kind == "bytes_list":
            if name not in categories:
                categories[name] = sorted(set(cells.dropna()))
            frame[name] = pd.Categorical(cells, categories=categories[name])
        else:
            frame[name] = pd.to_numeric(cells)
    return frame, categories


def _gbdt(params: dict):
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        categorical_features="from_dtype", random_state=0, **GBDT_FIXED, **params
    )


def tune_and_fit_gbdt(frame, labels: list[int], seed: int):
    """The grid point with the best inner-CV AUC (scikit-learn's GridSearchCV over
    seeded stratified folds), refitted on all of `frame`; and that point."""
    import numpy as np
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    search = GridSearchCV(
        _gbdt({}), {name: list(values) for name, values in GBDT_GRID.items()},
        scoring="roc_auc", cv=StratifiedKFold(GBDT_INNER_FOLDS, shuffle=True, random_state=seed),
        refit=True, error_score="raise",
    )
    search.fit(frame, np.asarray(labels))
    return search.best_estimator_, search.best_params_


def run_gbdt(train: list[dict[str, str]], labels: list[int], heldout: list[dict[str, str]],
             seed: int):
    """Tuned on, and fitted to, `train` (and its `labels`); probabilities for `heldout`."""
    from threadpoolctl import threadpool_limits

    x_train, categories = gbdt_frame(train)
    x_heldout, _ = gbdt_frame(heldout, categories)
    # One thread: on a shared machine OpenMP's spinning threads made fits ~6x slower.
    with threadpool_limits(1):
        model, params = tune_and_fit_gbdt(x_train, labels, seed)
        return [float(p) for p in model.predict_proba(x_heldout)[:, 1]], params
