"""Stage 3, the model: layers, optimizer, loss and metrics from the config; augmentation layers."""
