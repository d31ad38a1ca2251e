"""The direction of a monitored metric, numbered names (val_precision_1) included."""

from __future__ import annotations

import re


class NumberedMonitor:
    """Keras logs a metric name given twice numbered (precision, precision_1), but finds a
    monitor's direction by the metrics' own names, which are not: it raised "Keras isn't able
    to automatically determine whether that metric should be maximized" for val_precision_1.
    A numbered monitor goes the way of the metric it numbers."""

    monitor: str

    def _set_monitor_op(self) -> None:
        try:
            super()._set_monitor_op()  # type: ignore[misc]
        except ValueError:
            numbered = re.fullmatch(r"(.+)_[1-9][0-9]*", self.monitor)
            if numbered is None:
                raise
            monitor, self.monitor = self.monitor, numbered[1]
            try:
                super()._set_monitor_op()  # type: ignore[misc]
            finally:
                self.monitor = monitor
