"""Framework-neutral data layer (image reading; datasets, splits and augmentation follow)."""
