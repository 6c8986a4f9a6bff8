"""Data files shipped with the package (ImageNet class names)."""
