"""Turn a dataset config into model-ready splits: relabel, subset, scale, hold out, encode."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dltrain.config.dataset_section import AugmentationConfig, DatasetConfig
from dltrain.data.raw import Raw
from dltrain.data.sources import read_source
from dltrain.data.synthetic import stand_in_note, stand_in_source, synthetic_raw
from dltrain.data.targets import check_class_ids, targets_for
from dltrain.errors import DataError
from dltrain.tasks.base import LossKind, Task
from dltrain.tasks.registry import as_task


@dataclass
class Splits:
    """Float32 inputs and encoded labels for training, validation (optional) and test."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    class_names: list[str] | None
    preparation: Preparation
    synthetic: bool = False  # stand-in data (`smoke --synthetic`), not the dataset's own
    notes: list[str] = field(default_factory=list)  # for the user, printed before training

    @property
    def validation(self) -> tuple[np.ndarray, np.ndarray] | None:
        return None if self.x_val is None else (self.x_val, self.y_val)  # type: ignore[return-value]


def load_splits(cfg: DatasetConfig, seed: int, loss_kind: Task | LossKind,
                synthetic: bool = False) -> Splits:
    """Read the dataset and prepare it as the config asks; deterministic for a seed.

    `loss_kind` is the config's task (`config.task_spec`), or a loss's kind that names one.
    `synthetic` puts stand-ins with the same shapes and classes in place of datasets that
    would be downloaded; local files are still read.
    """
    task = as_task(loss_kind)
    stand_in = synthetic and stand_in_source(cfg)
    source = synthetic_raw(cfg) if stand_in else read_source(cfg)
    raw = targets_for(source, cfg, task)
    class_names = raw.class_names
    if cfg.label_map is not None:
        raw, class_names = relabel(raw, cfg.label_map), None
    check_class_ids(raw, cfg, task)
    rng = np.random.default_rng(seed)
    stratified = task.stratify_subsets
    x_train, y_train = subset(raw.x_train, raw.y_train, cfg.train_limit, rng, stratified)
    x_test, y_test = subset(raw.x_test, raw.y_test, cfg.test_limit, rng, stratified)
    x_train, y_train, x_val, y_val = hold_out(x_train, y_train, x_test, y_test, cfg, rng)
    # Statistics of the rows the model trains on only: validation rows shaped them before.
    preparation = preparation_for(x_train, cfg)
    preparation.feature_names = source.feature_names  # predict takes a CSV's columns by name
    x_train, x_test = preparation.apply(x_train), preparation.apply(x_test)
    x_val = None if x_val is None else preparation.apply(x_val)
    if task.numeric_targets:
        preparation.scale_targets(y_train, raw.target_names or [], cfg.standardize_target)
        y_train, y_test = preparation.apply_target(y_train), preparation.apply_target(y_test)
        y_val = None if y_val is None else preparation.apply_target(y_val)
        return Splits(x_train, y_train, x_val, y_val, x_test, y_test, 0, None, preparation,
                      synthetic=stand_in, notes=[stand_in_note(cfg)] if stand_in else [])
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    if class_names is not None:
        num_classes = max(num_classes, len(class_names))
    one_hot = cfg.one_hot if cfg.one_hot is not None else task.one_hot_by_default
    encode = (lambda y: encode_one_hot(y, num_classes)) if one_hot else (lambda y: y)
    return Splits(x_train, encode(y_train), x_val, None if y_val is None else encode(y_val),
                  x_test, encode(y_test), num_classes, class_names, preparation,
                  synthetic=stand_in, notes=[stand_in_note(cfg)] if stand_in else [])


def standardized(splits: Splits, cfg: DatasetConfig) -> Splits:
    """Splits read with dataset.standardize and standardize_target off, standardised as `cfg`
    asks by the statistics of their own training rows: a cross-validation's fold by the rows
    it trains on, not its held-out ones (as a scikit-learn Pipeline in cross_val_score)."""
    preparation = dataclasses.replace(splits.preparation)
    inputs: dict[str, Any] = {
        "x_train": splits.x_train, "x_val": splits.x_val, "x_test": splits.x_test}
    if cfg.standardize:
        preparation.mean, preparation.std = feature_statistics(splits.x_train)
        inputs = {name: None if x is None else
                  ((x - preparation.mean) / preparation.std).astype(np.float32)
                  for name, x in inputs.items()}
    targets: dict[str, Any] = {}
    if preparation.target_names is not None and cfg.standardize_target:
        preparation.scale_targets(splits.y_train, preparation.target_names, True)
        targets = {name: None if y is None else preparation.apply_target(y) for name, y in (
            ("y_train", splits.y_train), ("y_val", splits.y_val), ("y_test", splits.y_test))}
    return dataclasses.replace(splits, **inputs, **targets, preparation=preparation,
                               notes=list(splits.notes))


def relabel(raw: Raw, label_map: dict[int, int]) -> Raw:
    """Map every label through label_map; a label without an entry is an error, not a guess."""
    def apply(y: np.ndarray, split: str) -> np.ndarray:
        missing = sorted(set(np.unique(y).tolist()) - set(label_map))
        if missing:
            raise DataError(f"dataset.label_map has no entry for {split} label(s) {missing[:10]}.")
        # Sorted keys and a search, not a table indexed by label: a negative label (-1 of a
        # -1/1 dataset) would index such a table from its end.
        sources = np.array(sorted(label_map), dtype=np.int64)
        targets = np.array([label_map[source] for source in sources.tolist()], dtype=np.int64)
        return targets[np.searchsorted(sources, y)]

    return Raw(raw.x_train, apply(raw.y_train, "train"), raw.x_test, apply(raw.y_test, "test"))


def subset(x: np.ndarray, y: np.ndarray, limit: int | None, rng: np.random.Generator,
           stratified: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A seeded subset, stratified for class labels: classes keep their proportions and each
    appears if it can. A regression's targets get a plain seeded sample."""
    if limit is None or limit >= len(y):
        return x, y
    order = rng.permutation(len(y))
    if not stratified:
        chosen = np.sort(order[:limit])
        return x[chosen], y[chosen]
    shuffled = y[order]
    rank = np.empty(len(y), dtype=np.float64)
    for label in np.unique(shuffled):
        where = np.flatnonzero(shuffled == label)
        # Position within its class, as a fraction: interleaves classes in proportion.
        rank[where] = np.arange(len(where)) / len(where)
    chosen = np.sort(order[np.argsort(rank, kind="stable")[:limit]])
    return x[chosen], y[chosen]


@dataclass
class Preparation:
    """How raw inputs become model inputs; saved with a run so `predict` prepares files alike."""

    rescale: float
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    flatten_from: list[int] | None = None  # the sample shape flattened for a flat model input
    # A regression's targets: their names, and the training statistics they are scaled by
    # (dataset.standardize_target), undone on the model's outputs for every report.
    target_names: list[str] | None = None
    target_mean: np.ndarray | None = None
    target_std: np.ndarray | None = None
    feature_names: list[str] | None = None  # a CSV's feature columns, in the model's order

    def apply(self, x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float32) * np.float32(self.rescale)
        if x.ndim == 3:  # grayscale images get their channel axis
            x = x[..., None]
        if self.mean is not None and self.std is not None:
            x = (x - self.mean) / self.std
        if self.flatten_from is not None:
            x = x.reshape(len(x), -1)
        return x

    def scale_targets(self, y_train: np.ndarray, names: list[str], standardize: bool) -> None:
        self.target_names = list(names)
        if standardize:
            std = y_train.std(axis=0)
            std[std == 0] = 1
            self.target_mean, self.target_std = y_train.mean(axis=0), std

    def apply_target(self, y: np.ndarray) -> np.ndarray:
        if self.target_mean is None or self.target_std is None:
            return y
        return ((y - self.target_mean) / self.target_std).astype(np.float32)

    def undo_target(self, y: np.ndarray) -> np.ndarray:
        """Model outputs (or scaled targets) back in the targets' own units."""
        if self.target_mean is None or self.target_std is None:
            return y
        return (y * self.target_std + self.target_mean).astype(np.float32)

    def to_json(self) -> dict:
        def listed(value: np.ndarray | None) -> list | None:
            return None if value is None else value.tolist()

        targets = {} if self.target_names is None else {
            "target_names": self.target_names, "target_mean": listed(self.target_mean),
            "target_std": listed(self.target_std)}
        features = {} if self.feature_names is None else {"feature_names": self.feature_names}
        return {"rescale": self.rescale, "mean": listed(self.mean), "std": listed(self.std),
                "flatten_from": self.flatten_from, **targets, **features}

    @classmethod
    def from_json(cls, data: dict) -> Preparation:
        def array(value: list | None) -> np.ndarray | None:
            return None if value is None else np.asarray(value, dtype=np.float32)

        return cls(float(data["rescale"]), array(data.get("mean")), array(data.get("std")),
                   data.get("flatten_from"), data.get("target_names"),
                   array(data.get("target_mean")), array(data.get("target_std")),
                   data.get("feature_names"))


def preparation_for(x_train: np.ndarray, cfg: DatasetConfig) -> Preparation:
    """Rescale (1/255 for uint8 images by default); standardise with the training statistics."""
    factor = cfg.rescale if cfg.rescale is not None else (
        1 / 255 if x_train.dtype == np.uint8 else 1.0)
    preparation = Preparation(float(factor))
    if cfg.standardize:
        preparation.mean, preparation.std = feature_statistics(preparation.apply(x_train))
    return preparation


def feature_statistics(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each feature's mean and std over the rows; a constant feature's std is 1, not 0."""
    std = x.std(axis=0)
    std[std == 0] = 1
    return x.mean(axis=0), std


def hold_out(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
             cfg: DatasetConfig, rng: np.random.Generator) -> tuple:
    """Validation data: a seeded fraction of train, or the test split when asked by name."""
    if cfg.validation_split == "test":
        return x, y, x_test, y_test
    if not cfg.validation_split:
        return x, y, None, None
    count = max(1, round(len(y) * cfg.validation_split))
    if count >= len(y):
        raise DataError(f"dataset.validation_split {cfg.validation_split} leaves no training "
                        f"data from {len(y)} samples.")
    order = rng.permutation(len(y))
    train, val = np.sort(order[count:]), np.sort(order[:count])
    return x[train], y[train], x[val], y[val]


def encode_one_hot(y: np.ndarray, num_classes: int) -> np.ndarray:
    out = np.zeros((len(y), num_classes), dtype=np.float32)
    out[np.arange(len(y)), y] = 1
    return out


def check_fits_model(splits: Splits, input_shape: tuple[int, ...], output_units: int,
                     loss_kind: Task | LossKind,
                     augmentation: AugmentationConfig | None = None) -> None:
    """Refuse data the model cannot take before anything trains.

    Images meet a flat model.input_shape of their size (Keras 2's MLP habit, input_shape
    [784] for MNIST) flattened, with a note and a record in the preparation.
    """
    if is_flat_fit(splits.x_train.shape[1:], tuple(input_shape)):
        flatten(splits, tuple(input_shape), augmentation)
    if splits.x_train.shape[1:] != tuple(input_shape):
        raise DataError(f"model.input_shape is {list(input_shape)} but the data's samples have "
                        f"shape {list(splits.x_train.shape[1:])}. Set model.input_shape to match.")
    labels = [splits.y_train, splits.y_test] + ([] if splits.y_val is None else [splits.y_val])
    as_task(loss_kind).check_data_fits(labels, splits.num_classes,
                                       splits.preparation.target_names, output_units)


def is_flat_fit(sample: tuple[int, ...], input_shape: tuple[int, ...]) -> bool:
    return len(sample) > 1 and len(input_shape) == 1 and input_shape[0] == int(np.prod(sample))


def flatten(splits: Splits, input_shape: tuple[int, ...],
            augmentation: AugmentationConfig | None) -> None:
    """Flatten every split's samples for a flat model input, and record it for predict/eval."""
    sample = [int(size) for size in splits.x_train.shape[1:]]
    shown = "x".join(map(str, sample))
    if augmentation is not None and augments(augmentation):
        raise DataError(f"model.input_shape {list(input_shape)} is flat, so the {shown} images "
                        "would be flattened, but augmentation works on images. Set "
                        f"model.input_shape to {sample} and make Flatten the first layer, or "
                        "drop the augmentation section.")
    for name in ("x_train", "x_val", "x_test"):
        x = getattr(splits, name)
        if x is not None:
            setattr(splits, name, x.reshape(len(x), -1))
    splits.preparation.flatten_from = sample
    splits.notes.append(f"the samples ({shown}) are flattened to {input_shape[0]} values to fit "
                        f"model.input_shape {list(input_shape)}.")


def augments(augmentation: AugmentationConfig) -> bool:
    """Whether the augmentation section asks for anything (settings alone do not)."""
    settings = {"fill_mode", "cval", "rand_augment_factor"}
    return augmentation.model_dump(exclude=settings) != AugmentationConfig().model_dump(
        exclude=settings)
