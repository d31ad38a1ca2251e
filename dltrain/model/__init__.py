"""The model stage: layers, optimizer, loss and metrics from the config; augmentation layers."""
