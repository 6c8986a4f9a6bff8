"""Seeing inside the model, in either framework through the Backend: layer features
(features.py), Grad-CAM and saliency maps (maps.py), pictures of filters, maps and channel
activations (draw.py), and the sanity and localisation checks on maps (checks.py).
The maths is numpy-only in core.explain.
"""
