# Metrics that count class ids: 0 (or noise) for numeric targets. By squashed name.
CLASS_METRICS = {"accuracy", "acc", "binaryaccuracy", "categoricalaccuracy",
                 "sparsecategoricalaccuracy", "topkcategoricalaccuracy",
                 "sparsetopkcategoricalaccuracy", "auc", "precision", "recall", "f1score",
                 "fbetascore"}


def _check_regression(config: Config) -> None:
    name = config.loss_name
    for index, metric in enumerate(config.metrics):
        metric_name = metric if isinstance(metric, str) else metric.name
        if metric_name.replace("_", "").lower() in CLASS_METRICS:
            raise ConfigError(f"metrics.{index}: {metric_name} counts predictions equal to class "
                              f"ids, which a regression (loss {name}) does not make. Use mae, "
                              "mse or root_mean_squared_error, or remove metrics for the default "
                              "[mae].")
    if config.dataset.label_map is not None:
        raise ConfigError(f"dataset.label_map: relabels class ids, but loss {name} makes this a "
                          "regression. Remove label_map, or use a classification loss.")
    if config.dataset.one_hot:
        raise ConfigError(f"dataset.one_hot: encodes class ids, but loss {name} makes this a "
                          "regression, whose targets are used as they are. Remove one_hot.")
    _check_output(config)


def _check_output(config: Config) -> None:
    """A softmax or sigmoid squeezes a regression's outputs; a sigmoid may be meant for targets
    in [0, 1], which an explicit `task: regression` says."""
    index = len(config.model.layers) - 1
    ((layer, args),) = config.model.layers[index].items()
    activation = output_activation(layer, args)
    if activation not in CLASSIFIER_OUTPUTS or (activation == "sigmoid"
                                                and config.task == "regression"):
        return
    classifier_loss = ("binary_crossentropy" if activation == "sigmoid"
                       else "sparse_categorical_crossentropy")
    fractions = ("; for targets that are fractions in [0, 1], set task: regression to keep the "
                 "sigmoid" if activation == "sigmoid" else "")
    raise ConfigError(f"model.layers.{index}.{layer}: loss {config.loss_name} is a regression "
                      f"loss, but the last layer ends in {activation}, a classifier's output "
                      f"({CLASSIFIER_OUTPUTS[activation]}). Remove its activation for a linear "
                      f"output, or use {classifier_loss} for a classification{fractions}.")


def regression_targets(raw: Raw, cfg: DatasetConfig) -> Raw:
    where = (f"column '{cfg.label_columns[0]}'" if len(cfg.label_columns) == 1
             else f"{cfg.path or cfg.name}")
    if raw.class_names is not None:
        shown = ", ".join(raw.class_names[:5]) + (", ..." if len(raw.class_names) > 5 else "")
        raise DataError(f"a regression needs numeric targets, but {where} holds text ({shown}). "
                        "Use a classification loss (sparse_categorical_crossentropy) for class "
                        "names, or point dataset.label_column at a numeric column.")
    y_train, y_test = (np.asarray(y, dtype=np.float32) for y in (raw.y_train, raw.y_test))
    y_train, y_test = (y.reshape(len(y), -1) for y in (y_train, y_test))
    if y_train.shape[1] != y_test.shape[1]:
        raise DataError(f"{where}: {y_train.shape[1]} train targets but {y_test.shape[1]} test "
                        "targets per sample.")
    if not (np.isfinite(y_train).all() and np.isfinite(y_test).all()):
        raise DataError(f"{where}: a target is not a finite number (NaN or infinite).")
    names = raw.target_names or default_names(y_train.shape[1])
    return Raw(raw.x_train, y_train, raw.x_test, y_test, None, names)


def default_names(count: int) -> list[str]:
    return ["y"] if count == 1 else [f"y{index}" for index in range(count)]


def check_targets_fit(splits: Splits, output_units: int) -> None:
    count = splits.y_train.shape[1]
    if count != output_units:
        names = ", ".join(splits.preparation.target_names or [])
        targets = f"{count} target" + ("" if count == 1 else "s")
        units = f"{output_units} unit" + ("" if output_units == 1 else "s")
        raise DataError(f"the data has {targets} ({names}) but the last layer has {units}. Set "
                        f"the last layer's units to {count}.")


def predicted_values(names: list[str], outputs: np.ndarray,
                     preparation: Preparation) -> list[dict[str, Any]]:
    values = preparation.undo_target(np.asarray(outputs).reshape(len(names), -1))
    targets = preparation.target_names or [f"y{i}" for i in range(values.shape[1])]
    return [{"input": name, "values": dict(zip(targets, map(float, row), strict=True))}
            for name, row in zip(names, values, strict=True)]


def actual_values(labels: dict[str, str]) -> dict[str, float | None]:
    """A regression row's own targets, where the CSV holds them (None where not a number)."""
    def number(text: str) -> float | None:
        try:
            return float(text)
        except ValueError:
            return None

    return {column: number(text) for column, text in labels.items()}


def _regression(splits: Splits, outputs: Any, title: str,
                drawings: list[Picture]) -> dict[str, Any]:
    """Scores and plots in the targets' own units: a standardised target is scaled back."""
    from dltrain.report.plots import predicted_vs_actual, residuals
    from dltrain.report.regression import regression_report

    preparation = splits.preparation
    actual = preparation.undo_target(splits.y_test)
    predicted = preparation.undo_target(np.asarray(outputs).reshape(actual.shape))
    names = preparation.target_names or [f"y{i}" for i in range(actual.shape[1])]
    drawings.append(lambda folder: predicted_vs_actual(
        actual, predicted, names, f"{title}: predicted against actual",
        folder / runs.PREDICTED_FILE))
    drawings.append(lambda folder: residuals(
        actual, predicted, names, f"{title}: residuals", folder / runs.RESIDUALS_FILE))
    return {**regression_report(actual, predicted, names),
            "standardized_target": preparation.target_mean is not None}
