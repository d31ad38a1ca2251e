"""The training stage: a new fit (fit.py) or a resumed one (resume.py), the one model.fit
(loop.py), the run's event stream and its subscribers (events.py, keras_events.py, wiring.py),
signals, fine-tuning and smoke runs for CI."""
