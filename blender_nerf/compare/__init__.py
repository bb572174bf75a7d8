"""Compare: Blender renders the ground truth (``ground_truth``), the engine renders the NeRF for
the same cameras and measures it (``start``). Imports ``scene/``, ``jobs/``, ``preferences`` and
``views/`` (the run checks, the cameras file and the render command it shares with Render
Views)."""
