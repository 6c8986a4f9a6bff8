"""`alexnet benchmark`: throughput, latency and peak memory of our PyTorch and Keras paths next to
the plain reference implementations people write, measured in one run on one machine."""
