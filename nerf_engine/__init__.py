"""nerf_engine: the NeRF of Mildenhall et al. 2020 as a library and CLI (torch + numpy only).

Folders in pipeline order, each a layer that imports only the ones before it (a test checks):
``data`` (files and formats, numpy only: works without torch, inside Blender) <- ``nerf`` (rays,
sampling, the field, volume rendering, the model) <- ``checkpoint`` <- ``eval`` (the Renderer,
metrics, compare) <- ``train`` (the Trainer) <- ``tools`` (bench, toy scene) <- ``cli`` (the one
command line, the only module that prints). ``config`` (presets) and ``runtime`` (devices,
threads) sit beside them. Importing the package imports nothing heavy.
"""

__version__ = "0.1.0"
