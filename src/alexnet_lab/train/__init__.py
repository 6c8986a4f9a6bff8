"""Training: run configuration, recipes, strategies and schedules (framework-neutral), and the
entry point that hands a resolved config to the PyTorch or Keras training loop."""
