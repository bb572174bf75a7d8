"""Files and formats, numpy and the standard library only — importable without torch.

The add-on imports these modules inside Blender, whose Python has numpy but no torch: transforms
files (``dataset``, ``transforms_fields``), images (``images``), depth maps (``depth``), camera
intrinsics and ray maths
(``cameras``), the scene box and unit frame (``scene_box``), atomic writes (``fileio``), the
JSON-lines event contract of every engine job (``events``) and the layout of a run folder
(``run_folder``, its one reader). Modules here import only each other and ``..config``; a test
imports each of them in a process where ``import torch`` fails.
"""
