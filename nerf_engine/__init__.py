"""nerf_engine: the NeRF of Mildenhall et al. 2020 as a library and CLI (torch + numpy only).

Importing the package imports nothing heavy: ``dataset`` and ``cameras`` work without torch.
"""

__version__ = "0.1.0"
