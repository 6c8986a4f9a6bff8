"""Help texts several commands share, so that every command describes a flag in the same words."""

# what every command that reads weights accepts (weights.files.load_weights' sources)
WEIGHTS_HELP = "registry name, weight file / run folder, or hf://OWNER/REPO[@REVISION]"
# the order frameworks.*.device tries for 'auto'
DEVICE_HELP = "auto (CUDA, then MPS, then CPU), cpu, cuda[:N] or mps"
